"""`dp export`: write a dataset (and generated records) as cuhk-pedes, icfg-pedes, rstpreid, tbps-clip or native."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli.cli_common import dp_command, setting_option, settings
from dp_cli.data.config import DataConfig
from dp_cli.errors import SettingsError, UsageError
from dp_cli.export.config import ExportConfig


@dp_command
def command(
    dataset: Annotated[Optional[Path], setting_option(DataConfig, "dataset", "--dataset", "-d")] = None,
    input_format: Annotated[Optional[str], setting_option(DataConfig, "format", "--input-format")] = None,
    format: Annotated[Optional[str], setting_option(ExportConfig, "format", "--format", "-f")] = None,
    out: Annotated[Optional[Path], setting_option(ExportConfig, "out", "--out", "-o")] = None,
    edits: Annotated[Optional[Path], setting_option(ExportConfig, "edits", "--edits")] = None,
    annotations: Annotated[Optional[Path], setting_option(ExportConfig, "annotations", "--annotations")] = None,
    link: Annotated[Optional[bool], setting_option(ExportConfig, "link", "--link/--copy")] = None,
    use_base_description: Annotated[Optional[bool], setting_option(
        ExportConfig, "use_base_description", "--use-base-description/--skip-unannotated")] = None,
    include_failed_edits: Annotated[Optional[bool], setting_option(
        ExportConfig, "include_failed_edits", "--include-failed-edits/--skip-failed-edits")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an earlier export in --out (a folder "
                                            "holding export.json); other folders are never replaced.")] = False,
) -> None:
    """Export a dataset, plus generated records, in a TBPS format (CUHK-PEDES, ICFG-PEDES, RSTPReid, TBPS-CLIP, native).

    The summary ends with the trainer settings that read the export (IRRA's --root_dir and --dataset_name,
    TBPS-CLIP's anno_dir and image_dir).
    """
    from dp_cli import console
    from dp_cli.data.loading import load_dataset
    from dp_cli.export import export_dataset, load_generated

    # 1. Resolve both tables; their problems are reported together.
    data_cfg, cfg = _resolve(DataConfig, ExportConfig, dict(dataset=dataset, format=input_format),
                             dict(format=format, out=out, edits=edits, annotations=annotations, link=link,
                                  use_base_description=use_base_description, include_failed_edits=include_failed_edits))
    if data_cfg.dataset is None:
        raise UsageError("no dataset given", hint="pass --dataset PATH, set DP_DATASET, or set dataset in the data table of dp.toml")
    if cfg.out is None:
        raise UsageError("no output folder given", hint="pass --out DIR or set [export] out in dp.toml")
    # 2. Load the dataset and the generated records; nothing is written before everything checks out.
    ds = load_dataset(data_cfg.dataset, data_cfg.format)
    if ds.source_format != "dp-native":  # native datasets say their label set in dataset.json
        ds.label_set = data_cfg.label_set
    generated = (load_generated(cfg.edits, ds, cfg.annotations, cfg.use_base_description, cfg.include_failed_edits)
                 if cfg.edits else None)
    if generated is None and cfg.annotations:
        raise UsageError("--annotations needs --edits", hint="pass the edits.jsonl the annotations belong to")
    # 3. Export (with a progress bar once every check passed) and summarise.
    with console.progress(transient=True) as bar:
        def on_start(total: int):
            task = bar.add_task(f"{'linking' if cfg.link else 'copying'} images", total=total, status="")
            return lambda: bar.advance(task)

        result = export_dataset(ds, cfg.format, cfg.out, generated, link=cfg.link, overwrite=overwrite,
                                on_start=on_start)
    _render(result, generated.failed if generated else 0)


def _resolve(data_model, export_model, data_flags: dict, export_flags: dict):
    from dp_cli.config import combined

    found, errors = [], []
    for model, table, flags in ((data_model, "data", data_flags), (export_model, "export", export_flags)):
        try:
            found.append(settings(model, table, **flags))
        except SettingsError as exc:  # bad values: gathered; a broken file (any other ConfigError) ends here
            errors.append(exc)
    if errors:  # a usage error (exit 2) when every bad value came from an option
        raise combined(errors)
    return found


def _render(result, failed: int = 0) -> None:
    from dp_cli import console

    rows = [[split, c["images"], c["persons"], c["captions"]] for split, c in result.counts.items()]
    console.render_table(f"{result.format} export: counts per split", ["split", "images", "persons", "captions"], rows)
    p = {**result.payload(), "skipped_failed_verification": failed}
    summary = [("output", p["out"]), ("annotation file", p["annotation_file"]), ("images", p["images"]),
               ("generated records", p["generated_records"]), ("new persons", p["new_persons"]),
               ("skipped (no annotation)", p["skipped_without_annotation"]),
               ("left out (failed verification)", failed),
               ("person ids relabelled", "yes" if p["relabelled"] else "no")]
    if p["test_id_shift"]:
        summary.append(("val/test ids shifted by", p["test_id_shift"]))
    summary += list(result.train_with.items())
    console.render_summary("export", summary, p)
    for note in result.warnings:  # advice about where a trainer looks, not a problem: hidden by --quiet
        console.info(f"note: {note}")
    if p["skipped_without_annotation"]:
        console.warn(f"{p['skipped_without_annotation']} edits had no annotation and were skipped "
                     "(annotate them, or pass --use-base-description)")
