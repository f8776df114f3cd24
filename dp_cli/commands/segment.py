"""`dp segment`: human-parsing maps for a person dataset; `dp segment import`: convert maps you have."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli import console
from dp_cli.cli_common import dp_command, setting_option, settings
from dp_cli.data.config import DataConfig
from dp_cli.errors import UsageError
from dp_cli.segment.config import SegmentConfig

app = typer.Typer(
    help="Human-parsing maps (ATR labels) for a person dataset. `dp segment --dataset D --out O` runs a "
         "semantic-segmentation model over every image and writes one label map per image plus a native "
         "annotations.jsonl pointing to them (resumable; split between processes under accelerate "
         "launch / torchrun). `dp segment import` converts maps you already have.",
    invoke_without_command=True, no_args_is_help=True)

DatasetOpt = Annotated[Optional[Path], setting_option(DataConfig, "dataset", "--dataset", "-d")]
OutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="Output folder: a native dataset with images/, parsing/ and annotations.jsonl.")]
LabelSetOpt = Annotated[Optional[str], setting_option(SegmentConfig, "label_set", "--label-set")]
CleanupOpt = Annotated[Optional[bool], setting_option(SegmentConfig, "cleanup", "--cleanup/--no-cleanup")]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Redo every map, even in an output folder made with other settings.")]


def _load(dataset: Optional[Path]):

    data = settings(DataConfig, "data", dataset=dataset)
    if data.dataset is None:
        raise UsageError("no dataset given; pass --dataset PATH (or set dataset in the data table of dp.toml)")
    try:
        from dp_cli.data.loading import load_dataset
    except ModuleNotFoundError:  # pragma: no cover - loading lands with the data area
        from dp_cli.data.formats.native import load_native

        return load_native(data.dataset)
    return load_dataset(data.dataset, data.format)


def _segment_settings(**flags):
    """`settings()` for [segment]; its flags include `model`, which `settings()` takes as its own argument."""
    from dp_cli.config import load_project, resolve_section

    project = load_project(console.STATE.config, explicit=console.STATE.config is not None)
    return resolve_section(SegmentConfig, "segment", project, flags)


def _need_out(out: Optional[Path]) -> Path:
    if out is None:
        raise UsageError("no output folder given; pass --out DIR")
    return out


@app.callback()
@dp_command
def segment(
    ctx: typer.Context,
    dataset: DatasetOpt = None,
    out: OutOpt = None,
    model: Annotated[Optional[str], setting_option(SegmentConfig, "model")] = None,
    batch_size: Annotated[Optional[int], setting_option(SegmentConfig, "batch_size")] = None,
    device: Annotated[Optional[str], setting_option(SegmentConfig, "device")] = None,
    label_set: LabelSetOpt = None,
    cleanup: CleanupOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run a semantic-segmentation model over every image of a dataset and write one ATR label map per
    image plus a native annotations.jsonl pointing to them. Images already done are skipped (resume);
    under `accelerate launch` / `torchrun` the images are split between the processes."""
    if ctx.invoked_subcommand is not None:
        return
    from dp_cli.segment.runner import segment_dataset

    cfg = _segment_settings(model=model, batch_size=batch_size, device=device,
                   label_set=label_set, cleanup=cleanup)
    out = _need_out(out)
    data = _load(dataset)
    with console.progress() as bar:
        task = bar.add_task("segment", total=None, status="")
        result = segment_dataset(
            data, out, cfg, overwrite=overwrite, on_progress=lambda n: bar.advance(task, n),
            on_total=lambda todo, skipped: bar.update(task, total=todo, status=f"{skipped} done before"))
    _summary("dp segment", result, cfg.model)


@app.command("import")
@dp_command
def import_(
    dataset: DatasetOpt = None,
    out: OutOpt = None,
    maps: Annotated[Optional[Path], typer.Option(
        help="Folder of parsing PNGs (label ids), found by the image's relative path or its file name "
             "with .png. Default: the maps the dataset's records point to.")] = None,
    label_set: LabelSetOpt = None,
    cleanup: CleanupOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Convert existing parsing maps (LIP from SCHP, ATR, or any set mapped by a \\[segment.labels] table)
    to our ATR ids, into a native dataset like `dp segment` writes. Ids outside the label set are errors."""
    from dp_cli.segment.runner import import_maps

    cfg = _segment_settings(label_set=label_set, cleanup=cleanup)
    out = _need_out(out)
    data = _load(dataset)
    with console.progress() as bar:
        task = bar.add_task("import", total=len({r.image for r in data.records}), status="")
        result = import_maps(data, out, cfg, maps, overwrite=overwrite, on_progress=lambda n: bar.advance(task, n))
    if result.missing:
        console.warn(f"{result.missing} image(s) had no parsing map; their records have no `parsing`")
    _summary("dp segment import", result, str(maps) if maps else "dataset maps")


def _summary(title: str, result, source: str) -> None:
    out = str(Path(result.out).absolute())  # as the other commands report their folders
    rows = [("out", out), ("source", source), ("images", result.images),
            ("maps written now", result.done_now), ("already done", result.skipped)]
    if result.missing:
        rows.append(("without map", result.missing))
    rows.append(("images/s", round(result.images_per_s, 2)))
    rows += [(f"{t} found", f"{share:.0%}") for t, share in result.type_share.items()]
    payload = {"out": out, "source": source, "images": result.images, "written": result.done_now,
               "skipped": result.skipped, "missing": result.missing, "seconds": round(result.seconds, 3),
               "images_per_s": round(result.images_per_s, 3), "type_share": result.type_share}
    heavy = []
    if result.cleanup is not None:
        payload["cleanup_removed"] = {k: round(v, 4) for k, v in result.cleanup.removed_share().items()}
        heavy = result.cleanup.heavy()
        rows += [(f"clean-up took {label}", f"{share:.0%} of its pixels") for label, share, _, _ in heavy]
    console.render_summary(title, rows, payload)
    for label, share, before, after in heavy:
        console.warn(f"clean-up removed {share:.0%} of the {label} pixels (found in {console.count(before, 'map')} "
                     f"before, {after} after); if these are not specks, lower min_island_pixels in [segment] or "
                     "run without --cleanup")
