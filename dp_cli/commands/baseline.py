"""`dp baseline`: does the generated data improve retrieval? Train twice, compare on one test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional


from dp_cli import console
from dp_cli.baseline.config import BaselineConfig
from dp_cli.cli_common import dp_command, setting_option, settings, with_data_table


def _repeatable(option, note: str):
    """`option` (a list setting's typer.Option) with `note` at the end of its help: one value per flag."""
    option.help = f"{option.help} ({note})"
    return option


@dp_command
def command(
    dataset: Annotated[Optional[Path], setting_option(BaselineConfig, "dataset")] = None,
    edits: Annotated[Optional[Path], setting_option(BaselineConfig, "edits")] = None,
    annotations: Annotated[Optional[Path], setting_option(BaselineConfig, "annotations")] = None,
    include_failed_edits: Annotated[Optional[bool], setting_option(
        BaselineConfig, "include_failed_edits", "--include-failed-edits/--skip-failed-edits")] = None,
    preset: Annotated[Optional[str], setting_option(BaselineConfig, "preset")] = None,
    clip_model: Annotated[Optional[str], setting_option(BaselineConfig, "clip_model")] = None,
    output_dir: Annotated[Optional[Path], setting_option(BaselineConfig, "output_dir")] = None,
    epochs: Annotated[Optional[int], setting_option(BaselineConfig, "epochs")] = None,
    batch_size: Annotated[Optional[int], setting_option(BaselineConfig, "batch_size")] = None,
    lr: Annotated[Optional[float], setting_option(BaselineConfig, "lr")] = None,
    image_size: Annotated[Optional[str], setting_option(BaselineConfig, "image_size")] = None,
    seed: Annotated[Optional[list[int]], _repeatable(setting_option(BaselineConfig, "seeds", "--seed"),
                                                     "repeat: --seed 0 --seed 1")] = None,
    runs: Annotated[Optional[str], setting_option(BaselineConfig, "runs")] = None,
    mixed_precision: Annotated[Optional[str], setting_option(BaselineConfig, "mixed_precision")] = None,
) -> None:
    """Train a CLIP retrieval baseline (ITC + SDM) on the original and the grown training set; print both and the gain.

    Everything goes to --output-dir: one model per run and results.json. A rerun into the same folder adds to
    it: runs already there are kept and not trained again, new seeds or --runs are trained, and the table,
    means and gain cover every run the folder holds. A folder whose runs had other settings (dataset, edits,
    epochs, ...) is refused before any training: use another --output-dir for them.
    """
    from dp_cli.baseline.compare import METRICS, RESULTS, run_gain
    from dp_cli.baseline.inputs import load_inputs

    cfg = settings(_model(), "baseline", dataset=dataset, edits=edits, annotations=annotations,
                   include_failed_edits=include_failed_edits, preset=preset,
                   clip_model=clip_model, output_dir=output_dir, epochs=epochs, batch_size=batch_size, lr=lr,
                   image_size=image_size, seeds=seed or None, runs=runs, mixed_precision=mixed_precision)
    cfg = with_data_table(cfg, "dataset")
    data, generated = load_inputs(cfg)
    with console.progress() as bar:
        task = bar.add_task("baseline", total=None, status="")

        def on_run(name: str, s: int) -> None:
            bar.update(task, description=f"{name} seed {s}", completed=0)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, status=f"loss {loss:.3f}")

        report = run_gain(cfg, data, generated, on_step=on_step, on_run=on_run)
    if not console.is_main_process():
        return
    results = cfg.output_dir / RESULTS
    if report.skipped:
        console.info(f"already in {results}, not trained again: {_runs(report.skipped)}")
    rows = []
    for name in ("original", "grown"):
        if report.rows(name):
            mean, std = report.mean(name), report.spread(name)
            rows.append([name] + [f"{mean[m]:.2f} ± {std[m]:.2f}" if len(report.rows(name)) > 1 else f"{mean[m]:.2f}"
                                  for m in METRICS])
    if report.gain():
        rows.append(["gain"] + [f"{report.gain()[m]:+.2f}" for m in METRICS])
    console.render_table(f"Retrieval baseline ({_seed_note(report)}, {report.generated_records} generated "
                         "image-caption pairs)", ["train set", *METRICS], rows)
    summary = {"results": str(results), "runs in the folder": len(report.runs)}
    if report.kept:
        summary["kept from earlier runs"] = len(report.kept)
    if report.skipped:
        summary["already there (not trained again)"] = _runs(report.skipped)
    console.render_summary("Results", summary, payload={
        **report.to_json(), "skipped": [{"name": n, "seed": s} for n, s in report.skipped]})


def _seed_note(report) -> str:
    """'3 seed(s)' when both rows have the same seeds; else which seeds each row (and the gain) averages."""
    by_row = {n: sorted(r.seed for r in report.rows(n)) for n in ("original", "grown") if report.rows(n)}
    if len({tuple(v) for v in by_row.values()}) <= 1:
        return f"{len(report.seeds())} seed(s)"
    parts = [f"{n}: seeds {', '.join(map(str, v))}" for n, v in by_row.items()]
    if report.gain():
        parts.append(f"gain: seeds {', '.join(map(str, report.paired_seeds()))}")
    return "; ".join(parts)


def _runs(runs: list[tuple[str, int]]) -> str:
    return ", ".join(f"{name} seed {seed}" for name, seed in runs)


def _model():

    return BaselineConfig
