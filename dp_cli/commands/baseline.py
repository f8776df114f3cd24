"""`dp baseline`: does the generated data improve retrieval? Train twice, compare on one test split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli import console
from dp_cli.cli_common import dp_command, settings, with_data_table


@dp_command
def command(
    dataset: Annotated[Optional[Path], typer.Option(help="Person dataset with train and test splits.")] = None,
    edits: Annotated[Optional[Path], typer.Option(help="edits.jsonl of the generated images.")] = None,
    annotations: Annotated[Optional[Path], typer.Option(help="annotations.jsonl for those edits.")] = None,
    include_failed_edits: Annotated[Optional[bool], typer.Option(
        "--include-failed-edits/--skip-failed-edits",
        help="Also train on edits that failed dp edit's verifier (default: skip them, as dp export).")] = None,
    preset: Annotated[Optional[str], typer.Option(help="irra (paper settings) or toy (minutes on CPU).")] = None,
    clip_model: Annotated[Optional[str], typer.Option(help="CLIP hub id or local folder.")] = None,
    output_dir: Annotated[Optional[Path], typer.Option(help="Where runs and results.json go.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Batch size per process.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate.")] = None,
    image_size: Annotated[Optional[str], typer.Option(help="Input size HxW, e.g. 384x128.")] = None,
    seed: Annotated[Optional[list[int]], typer.Option("--seed", help="Seed (repeat for a spread over seeds).")] = None,
    runs: Annotated[Optional[str], typer.Option(help="both, original or grown.")] = None,
    mixed_precision: Annotated[Optional[str], typer.Option(help="no, fp16 or bf16.")] = None,
) -> None:
    """Train a CLIP retrieval baseline (ITC + SDM) on the original and the grown training set; print both and the gain."""
    from dp_cli.baseline.compare import METRICS, run_gain
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
    rows = []
    for name in ("original", "grown"):
        if report.rows(name):
            mean, std = report.mean(name), report.spread(name)
            rows.append([name] + [f"{mean[m]:.2f} ± {std[m]:.2f}" if len(cfg.seeds) > 1 else f"{mean[m]:.2f}"
                                  for m in METRICS])
    if report.gain():
        rows.append(["gain"] + [f"{report.gain()[m]:+.2f}" for m in METRICS])
    console.render_table(f"Retrieval baseline ({len(cfg.seeds)} seed(s), {report.generated_records} generated image-caption pairs)",
                         ["train set", *METRICS], rows)
    console.render_summary("Results", {"results": str(cfg.output_dir / "results.json")}, payload=report.to_json())


def _model():
    from dp_cli.baseline.config import BaselineConfig

    return BaselineConfig
