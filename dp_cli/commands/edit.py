"""`dp edit`: put reference attributes (catalog images) on real people, keep everything else."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dp_cli import console
from dp_cli.cli_common import dp_command, setting_option, settings, with_data_table
from dp_cli.cli_common import seed_aliases
from dp_cli.edit.config import EditConfig
from dp_cli.errors import UsageError


@dp_command
@seed_aliases({"--start_merge_step": "start_merge_step"})  # the seed's (FastComposer's) spelling
def command(
    image: Annotated[Optional[Path], typer.Option(help="One-image mode: the person image.")] = None,
    parsing: Annotated[Optional[Path], typer.Option(help="One-image mode: its parsing map (label PNG).")] = None,
    caption: Annotated[Optional[str], typer.Option(help="One-image mode: its description.")] = None,
    attribute: Annotated[Optional[list[str]], typer.Option(
        "--attribute", "-a", help='One-image mode: TYPE=IMAGE\\[@MASK]\\[:LABEL], e.g. hair=gold.png or '
                                  'bottomcloth=skirt.png@skirt_mask.png:"white skirt" (repeat).')] = None,
    out: Annotated[Optional[Path], typer.Option(help="One-image mode: the edited image to write.")] = None,
    label_set: Annotated[str, typer.Option(help="One-image mode: label set of the parsing map (atr, lip).")] = "atr",
    model: Annotated[Optional[str], setting_option(EditConfig, "model")] = None,
    dataset: Annotated[Optional[Path], setting_option(EditConfig, "dataset")] = None,
    split: Annotated[Optional[str], setting_option(EditConfig, "split")] = None,
    catalog: Annotated[Optional[Path], setting_option(EditConfig, "catalog")] = None,
    types: Annotated[Optional[str], setting_option(EditConfig, "types")] = None,
    attributes_per_variant: Annotated[Optional[int], setting_option(EditConfig, "attributes_per_variant")] = None,
    variants_per_person: Annotated[Optional[int], setting_option(EditConfig, "variants_per_person")] = None,
    persons: Annotated[Optional[int], setting_option(EditConfig, "persons")] = None,
    output_dir: Annotated[Optional[Path], setting_option(EditConfig, "output_dir")] = None,
    seed: Annotated[Optional[int], setting_option(EditConfig, "seed")] = None,
    scheduler: Annotated[Optional[str], setting_option(EditConfig, "scheduler")] = None,
    steps: Annotated[Optional[int], setting_option(EditConfig, "steps")] = None,
    guidance_scale: Annotated[Optional[float], setting_option(EditConfig, "guidance_scale")] = None,
    delayed_conditioning: Annotated[Optional[float], setting_option(EditConfig, "delayed_conditioning")] = None,
    start_merge_step: Annotated[Optional[int], typer.Option(min=0, help="Step from which the references "
        "take over: the same as --delayed-conditioning N/steps (give one of the two).")] = None,
    reference_scale: Annotated[Optional[float], setting_option(EditConfig, "reference_scale")] = None,
    mask_dilation: Annotated[Optional[int], setting_option(EditConfig, "mask_dilation")] = None,
    feather: Annotated[Optional[int], setting_option(EditConfig, "feather")] = None,
    composite: Annotated[Optional[bool], setting_option(EditConfig, "composite", "--composite/--no-composite")] = None,
    keep_adjectives: Annotated[Optional[bool], setting_option(
        EditConfig, "keep_adjectives", "--keep-adjectives/--drop-adjectives")] = None,
    label_in_prompt: Annotated[Optional[bool], setting_option(
        EditConfig, "label_in_prompt", "--label-in-prompt/--no-label-in-prompt")] = None,
    candidates: Annotated[Optional[int], setting_option(EditConfig, "candidates")] = None,
    retries: Annotated[Optional[int], setting_option(EditConfig, "retries")] = None,
    min_score: Annotated[Optional[float], setting_option(EditConfig, "min_score")] = None,
    precision: Annotated[Optional[str], setting_option(EditConfig, "precision")] = None,
    batch_size: Annotated[Optional[int], setting_option(EditConfig, "batch_size")] = None,
    compile: Annotated[Optional[str], setting_option(EditConfig, "compile")] = None,
    device: Annotated[Optional[str], setting_option(EditConfig, "device")] = None,
    contact_sheet: Annotated[Optional[bool], setting_option(
        EditConfig, "contact_sheet", "--contact-sheet/--no-contact-sheet")] = None,
) -> None:
    """Edit people with reference attribute images: one image (--image ...) or a dataset (the edit table of dp.toml).

    Dataset mode writes images/, masks/ and edits.jsonl; reruns skip finished images.

    Under torchrun or accelerate launch the work is split between the processes.

    Catalog pictures are cut to the garment as in training.

    Every edit is verified from the images; under --min-score it fails (not annotated, not exported).

    --candidates N keeps the best-verified of N seeds; --retries R tries new seeds for an edit that fails.
    """
    if start_merge_step is not None and delayed_conditioning is not None:
        raise UsageError("--start-merge-step and --delayed-conditioning set the same thing (the step where the "
                         "references take over)", hint="give one of them; --start-merge-step N = N / --steps")
    cfg = settings(_model(), "edit", model=model, dataset=dataset, split=split, catalog=catalog, types=types,
                   attributes_per_variant=attributes_per_variant, variants_per_person=variants_per_person,
                   persons=persons, output_dir=output_dir, seed=seed, scheduler=scheduler, steps=steps,
                   guidance_scale=guidance_scale, delayed_conditioning=delayed_conditioning,
                   reference_scale=reference_scale,
                   mask_dilation=mask_dilation, feather=feather, composite=composite,
                   keep_adjectives=keep_adjectives, label_in_prompt=label_in_prompt, candidates=candidates,
                   retries=retries, min_score=min_score, precision=precision,
                   batch_size=batch_size, compile=compile, device=device, contact_sheet=contact_sheet)
    if start_merge_step is not None:
        cfg = cfg.with_start_merge_step(start_merge_step)
    one_image = (image, parsing, caption, attribute, out)
    if any(v is not None for v in one_image):
        if any(v is None for v in one_image):
            raise UsageError("one-image mode needs --image, --parsing, --caption, --attribute and --out")
        if dataset is not None or catalog is not None:
            raise UsageError("give either --image (one image) or --dataset/--catalog (dataset mode), not both")
        _single(cfg, image, parsing, caption, attribute, out, label_set)
    else:
        _dataset(with_data_table(cfg, "dataset", "catalog"))


def _single(cfg, image, parsing, caption, attribute, out, label_set) -> None:
    from dp_cli.edit.single import edit_single

    res = edit_single(cfg, image, parsing, caption, attribute, out, label_set)
    refs = [{"type": b.type, "label": b.label, "noun": b.noun, "replaced": b.replaced,
             "added_phrase": b.added_phrase, "preparation": p.record()} for b, p in zip(res.bindings, res.preparations)]
    for p in res.preparations:
        if p.warning:
            console.warn(p.warning)
    v = res.verdict
    verdict = f"{'passed' if v.passed else 'FAILED'} (score {v.score:.2f}, min {v.min_score:.2f})"
    console.render_summary("Edited", {"output": str(res.out), "prompt": res.prompt,
                                      "edited area": f"{res.mask_fraction:.1%}", "verifier": verdict,
                                      "seed": res.seed, "model": res.model},
                           payload={"output": str(res.out), "prompt": res.prompt, "references": refs,
                                    "mask_fraction": res.mask_fraction, "model": res.model, "seed": res.seed,
                                    "verify": v.record()})
    if not v.passed:
        console.warn(f"the edit scored {v.score:.2f} < min_score {v.min_score:.2f}: it may not show the "
                     "reference; try --retries 3, --candidates 4 or another --seed")


def _dataset(cfg) -> None:
    from dp_cli.edit.runner import prepare_dataset_edit, run_dataset_edit

    prepared = prepare_dataset_edit(cfg)
    persons = len({job.record.person_id for job in prepared.jobs})
    if cfg.persons is not None and cfg.persons > persons and console.is_main_process():
        console.warn(f"--persons {cfg.persons}: split {cfg.split!r} has {console.count(persons, 'person')} to edit "
                     "(with parsing maps that show the chosen types); editing all of them")
    with console.progress() as bar:
        task = bar.add_task("editing", total=None, status="")

        def on_progress(done: int, total: int, ips: float) -> None:
            bar.update(task, completed=done, total=total, status=f"{ips:.2f} img/s")

        summary = run_dataset_edit(cfg, on_progress=on_progress, prepared=prepared)
    if not console.is_main_process():
        return
    rows = {"output": str(summary.output_dir),
            "manifest": f"{summary.manifest} ({console.count(summary.rows, 'image')})",
            "planned": summary.planned, "already done": summary.skipped, "written (this process)": summary.written,
            "processes": summary.processes, "images/s (this process)": round(summary.images_per_s, 3)}
    seeds = summary.extra.get("seeds", 0)
    if seeds > summary.written:
        rows["seeds tried (this process)"] = f"{seeds} ({seeds / summary.written:.2f} per image)"
    if summary.status:
        s = summary.status
        rows["verified"] = f"{s['passed']} passed, {s['failed']} failed (min_score {cfg.min_score})" + (
            f", {s['unverified']} unverified" if s["unverified"] else "")
    if summary.contact_sheet:
        rows["contact sheet"] = str(summary.contact_sheet)
    for warning in summary.reference_warnings:
        console.warn(warning)
    other = summary.extra.get("kept_with_other_settings", 0)
    if other:
        rows["kept from a run with other settings"] = other
        console.warn(f"{other} finished image(s) in {summary.output_dir} were made with another model, sampler "
                     "setting, seed or reference and were kept as they are; use a new --output-dir to apply "
                     "the new settings to every image")
    console.render_summary("Edit", rows, payload={
        "output": str(summary.output_dir), "manifest": str(summary.manifest), "rows": summary.rows,
        "planned": summary.planned, "already_done": summary.skipped, "written": summary.written,
        "processes": summary.processes, "images_per_s": round(summary.images_per_s, 3), "seeds": seeds,
        "status": summary.status, "min_score": cfg.min_score, "kept_with_other_settings": other,
        "contact_sheet": str(summary.contact_sheet) if summary.contact_sheet else None,
        "reference_warnings": summary.reference_warnings})


def _model():

    return EditConfig
