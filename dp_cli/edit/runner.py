"""Run a dataset edit: plan, shard across processes, edit in batches, write images and manifest lines.

Crash safety: each image (and its mask) is written atomically, then its manifest line is appended and
fsynced; a rerun skips every id with both. Loading the next batch and writing the last one run on
background threads while a batch is edited (dp_cli.edit.overlap), in the same order. Under torchrun /
accelerate each process takes every n-th job of the plan and appends to its own shard; the main process
merges them at the end.
"""

from __future__ import annotations

import functools
import time
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, NamedTuple

import numpy as np

from dp_cli.data.handoff import FAILED, PASSED, EditReference, EditRow
from dp_cli.data.images import eight_bit, load_parsing, load_rgb
from dp_cli.edit.manifest import MANIFEST, all_rows, check_output_dir, finished_ids, merge_manifest, shard_path
from dp_cli.edit.overlap import Overlap
from dp_cli.data.loading import load_dataset
from dp_cli.edit.plan import EditJob, check_jobs, load_catalog, plan_jobs, present_types
from dp_cli.distributed import pick_device, process_state
from dp_cli.errors import DataError, ModelError, UsageError
from dp_cli.fsutil import JsonlAppender, remove_stale_temps, save_image_atomic

TOY_MODEL = Path(__file__).resolve().parent.parent / "assets" / "toy-model"
SETTING_KEYS = ("scheduler", "steps", "guidance_scale", "delayed_conditioning", "reference_scale", "mask_dilation",
                "feather", "composite", "keep_adjectives", "label_in_prompt", "precision", "candidates", "retries",
                "min_score")

ProgressFn = Callable[[int, int, float], None]  # (done, total, images per second)


@dataclass
class EditSummary:
    """What a dataset edit did."""

    output_dir: Path
    manifest: Path
    planned: int
    skipped: int  # already finished before this run
    written: int  # by this process
    seconds: float
    processes: int = 1
    contact_sheet: Path | None = None
    rows: int = 0  # lines of the merged manifest
    extra: dict[str, Any] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)  # passed / failed / unverified over the plan
    reference_warnings: list[str] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def resolve_model(model: str | None) -> str:
    """The model to load: the one named, else the toy model shipped with dp, else a clear error."""
    if model:
        from dp_models.loading import is_hub_id

        folder = Path(model).expanduser()
        if not folder.exists() and not is_hub_id(model):
            raise ModelError(f"model folder {model} not found",
                             hint="pass --model with a folder written by `dp train`, or a hub id")
        if not (folder / "dp_config.json").exists() and (folder / "model" / "dp_config.json").exists():
            return str(folder / "model")  # the run folder of `dp train` was given: its final model
        return model
    if TOY_MODEL.is_dir():
        return str(TOY_MODEL)
    raise ModelError("no model given and no toy model shipped in dp_cli/assets/toy-model",
                     hint="pass --model with a folder written by `dp train` (or a hub id), or set [edit] model")


def load_pipeline(model_ref: str, cfg, device: str):
    """The editing pipeline for a model reference; library errors become one-line ModelErrors."""
    from dp_models.edit_pipeline import DPEditPipeline

    try:
        return DPEditPipeline.from_pretrained(model_ref, scheduler=cfg.scheduler, device=device,
                                              precision=cfg.precision, compile=cfg.compile)
    except ModelError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"model {model_ref} cannot be loaded: {first}",
                         hint="pass a complete folder written by `dp train` (--model)") from None


def edit_mask(parsing: np.ndarray, types: list[str], label_set: str) -> np.ndarray:
    """Union of the edited attribute types' masks."""
    from dp_cli.data.attributes import attribute_mask

    mask = np.zeros(parsing.shape, dtype=bool)
    for t in types:
        mask |= attribute_mask(parsing, t, label_set)
    return mask


def settings_of(cfg) -> dict[str, Any]:
    return {k: getattr(cfg, k) for k in SETTING_KEYS}


def sampler_kwargs(cfg) -> dict[str, Any]:
    """The edit settings a DPEditPipeline call takes (dataset and one-image edits alike)."""
    return dict(num_inference_steps=cfg.steps, guidance_scale=cfg.guidance_scale,
                delayed_conditioning=cfg.delayed_conditioning, reference_scale=cfg.reference_scale,
                mask_dilation=cfg.mask_dilation, feather=cfg.feather,
                composite=cfg.composite, keep_adjectives=cfg.keep_adjectives, label_in_prompt=cfg.label_in_prompt)


@functools.lru_cache(maxsize=512)
def prepared_reference(path: str, mask: str | None = None):
    """A catalog image in the encoder's training form (dp_cli.data.reference), prepared once per run.

    The noise outside the garment is seeded by the picture's (and mask's) bytes, so a reference looks the
    same in every job, and in every run wherever the catalog lies."""
    from dp_cli.data.reference import load_mask_file, noise_seed, prepare_reference

    image, crc = _open_reference(Path(path))
    fg = load_mask_file(Path(mask), image.size) if mask else None
    seed = noise_seed(crc, zlib.crc32(Path(mask).read_bytes()) if mask else "")
    return prepare_reference(image, fg, seed=seed, name=f"reference {path}")


def _key(item) -> tuple[str, str | None]:
    """The cache key of a catalog item or an `--attribute` spec: its picture and, if given, mask."""
    return str(item.image), str(item.mask) if item.mask else None


def prepared_item(item):
    """`prepared_reference` of a catalog item or an `--attribute` spec."""
    return prepared_reference(*_key(item))


@functools.lru_cache(maxsize=None)
def _preparation_record(path: str, mask: str | None) -> dict[str, Any]:
    return prepared_reference(path, mask).record()


def preparation_record(item) -> dict[str, Any]:
    """What edits.jsonl says about an item's preparation; kept for every reference of the run (a few numbers
    each), so a catalog larger than the prepared-image cache is not prepared again for its lines or warnings."""
    return dict(_preparation_record(*_key(item)))


@functools.lru_cache(maxsize=4096)
def _prepared_colours(path: str, mask: str | None):
    from dp_cli.edit.verify import reference_colours

    return reference_colours(prepared_reference(path, mask))


def prepared_colours(item):
    """What the verifier reads of an item's prepared reference (10 KB), once per run and reference."""
    return _prepared_colours(*_key(item))


def _open_reference(path: Path):
    """(the picture, with its alpha channel when it has one; the crc32 of its bytes): the file is read once."""
    from io import BytesIO

    from PIL import Image

    try:
        data = path.read_bytes()
        with Image.open(BytesIO(data)) as im:
            im.load()
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return eight_bit(im).convert("RGBA" if alpha else "RGB"), zlib.crc32(data)
    except (OSError, ValueError, Image.DecompressionBombError):
        load_rgb(path, "reference image")  # raises its one-line error for a missing or corrupt file
        raise


def reference_warnings(jobs: list[EditJob]) -> list[str]:
    """The preparation warnings of the references these jobs use, one per reference."""
    unique = {(str(r.image), str(r.mask)): r for j in jobs for r in j.references}
    return [w for _, r in sorted(unique.items(), key=lambda kv: kv[0])
            if (w := preparation_record(r).get("warning"))]


def candidate_seed(seed: int, k: int) -> int:
    """Candidate k of an edit: k = 0 is the edit's own seed, so --candidates 1 is the plain edit."""
    return seed if k == 0 else (seed * 7919 + 104_729 * k) % (2**31)


@dataclass
class EditOutcome:
    """The kept candidate of one job."""

    image: Any
    mask: Any
    prompt: Any
    seed: int
    verdict: Any
    candidates: list[dict[str, Any]]


@dataclass
class EditInput:
    """One edit's loaded source, edit mask, caption, seed, and per attribute its type, label, region in the
    source, prepared reference and what the verifier reads of it (`prepared_colours`)."""

    image: Any
    mask: np.ndarray
    caption: str
    seed: int
    types: list[str]
    labels: list[str]
    regions: list[np.ndarray]
    preps: list[Any]
    colours: list[Any]


def _load_input(dataset, job: EditJob) -> EditInput:
    from dp_cli.data.attributes import attribute_mask

    parsing = load_parsing(dataset.parsing_path(job.record), f"record {job.record.id!r} parsing map")
    types = [r.type for r in job.references]
    return EditInput(load_rgb(dataset.image_path(job.record), f"record {job.record.id!r} image"),
                     edit_mask(parsing, types, dataset.label_set), job.caption, job.seed, types,
                     [r.label for r in job.references], [attribute_mask(parsing, t, dataset.label_set) for t in types],
                     [prepared_item(r) for r in job.references], [prepared_colours(r) for r in job.references])


class _Tried(NamedTuple):
    image: Any
    mask: Any
    prompt: Any
    seed: int
    verdict: Any


def edit_verified(pipe, inputs: list[EditInput], cfg) -> list[EditOutcome]:
    """Edit `cfg.candidates` seeds of each input in one pipeline call and verify every candidate; an input
    none of whose candidates passes gets up to `cfg.retries` more rounds of `cfg.candidates` new seeds (the
    failing inputs together in one call). The best-scored candidate of all tried is kept (ties: the earliest)."""
    from dp_cli.edit.verify import verify_edit
    from dp_models.edit_pipeline import Reference

    n = cfg.candidates
    refs = [[Reference(t, p.image, lab) for t, p, lab in zip(x.types, x.preps, x.labels)] for x in inputs]
    tried: list[list[_Tried]] = [[] for _ in inputs]
    active = list(range(len(inputs)))
    for round_ in range(1 + cfg.retries):
        calls = [(i, k) for i in active for k in range(round_ * n, (round_ + 1) * n)]
        seeds = [candidate_seed(inputs[i].seed, k) for i, k in calls]
        result = pipe([inputs[i].image for i, _ in calls], [inputs[i].mask for i, _ in calls],
                      [inputs[i].caption for i, _ in calls], [refs[i] for i, _ in calls], seed=seeds,
                      **sampler_kwargs(cfg))
        for j, (i, _) in enumerate(calls):
            x = inputs[i]
            verdict = verify_edit(np.asarray(result.images[j]), np.asarray(x.image), x.regions, x.types,
                                  x.colours, cfg.min_score)
            tried[i].append(_Tried(result.images[j], result.masks[j], result.prompts[j], seeds[j], verdict))
        active = [i for i in active if not any(t.verdict.passed for t in tried[i])]
        if not active:
            break
    return [_best(t) for t in tried]


def _best(tried: list[_Tried]) -> EditOutcome:
    b = tried[max(range(len(tried)), key=lambda k: (tried[k].verdict.score, -k))]
    return EditOutcome(b.image, b.mask, b.prompt, b.seed, b.verdict,
                       [{"seed": t.seed, "score": round(t.verdict.score, 4)} for t in tried])


def manifest_row(job: EditJob, dataset, outcome: EditOutcome, model_ref: str, cfg, resolution) -> EditRow:
    """One line of edits.jsonl (docs/FORMATS.md)."""
    refs = [replace(EditReference.from_json(item.to_reference_json(), f"catalog item {item.image}"),
                    replaced=binding.replaced, added_phrase=binding.added_phrase,
                    preparation=preparation_record(item))
            for item, binding in zip(job.references, outcome.prompt.bindings)]
    return EditRow(id=job.id, image=f"images/{job.filename}", mask=f"masks/{job.filename}",
                   source_id=job.record.id, source_image=str(dataset.image_path(job.record).resolve()),
                   source_dataset=str(dataset.root.resolve()), person_id=job.record.person_id,
                   variant=job.variant, split=job.record.split, base_description=job.caption,
                   prompt=outcome.prompt.text,
                   reference_attribute_list=refs, seed=outcome.seed, verify=outcome.verdict.record(),
                   status=PASSED if outcome.verdict.passed else FAILED, candidates=outcome.candidates,
                   model=model_ref, settings={**settings_of(cfg), "resolution": list(resolution)})


def status_counts(rows: list[EditRow], planned: set[str]) -> dict[str, int]:
    """passed / failed / unverified (written before there was a verifier) over the planned edits."""
    counts = {"passed": 0, "failed": 0, "unverified": 0}
    seen: set[str] = set()
    for row in rows:
        if row.id in planned and row.id not in seen:
            seen.add(row.id)
            counts[row.verdict or "unverified"] += 1
    return counts


# a setting a manifest line lacks was added after that line was written: the value that reproduces how it was made
_SETTING_DEFAULTS = {"retries": 0}


def kept_with_other_settings(out: Path, jobs: list[EditJob], done: set[str], model_ref: str, cfg) -> int:
    """Finished images this run skipped whose manifest line has another model, sampler setting, seed or reference."""
    planned, settings, seen, n = {j.id: j for j in jobs}, settings_of(cfg), set(), 0
    for row in all_rows(out):
        job = planned.get(row.id)
        if job is None or row.id not in done or row.id in seen:
            continue
        seen.add(row.id)
        old = {k: (row.settings or {}).get(k, _SETTING_DEFAULTS.get(k)) for k in settings}
        refs = [str(r.image) for r in row.references if not r.bare]
        if (row.model != model_ref or old != settings or job.seed not in row.candidate_seeds
                or refs != [str(item.image) for item in job.references]):
            n += 1
    return n


@dataclass
class PreparedEdit:
    """Everything checked and loaded before the first image is written."""

    cfg: Any
    dataset: Any
    jobs: list[EditJob]
    model_ref: str
    pipe: Any
    state: Any


def prepare_dataset_edit(cfg) -> PreparedEdit:
    """Plan the jobs and check every input, then load the model: errors come before any output."""
    dataset, jobs = plan_dataset_edit(cfg)
    model_ref = resolve_model(cfg.model)
    state = process_state(cfg.device)
    pipe = load_pipeline(model_ref, cfg, pick_device(cfg.device, state))
    return PreparedEdit(cfg, dataset, jobs, model_ref, pipe, state)


def plan_dataset_edit(cfg) -> tuple[Any, list[EditJob]]:
    """(the dataset, its edit jobs), every input checked."""
    if cfg.dataset is None or cfg.catalog is None:
        missing = " and ".join(k for k in ("dataset", "catalog") if getattr(cfg, k) is None)
        raise UsageError(f"dataset mode needs a {missing}",
                        hint="pass --dataset / --catalog, or set them in [edit] or [data] of dp.toml "
                             "(or use --image for one image)")
    from dp_cli.fsutil import check_outputs

    check_outputs({"--output-dir": cfg.output_dir}, {"--dataset": cfg.dataset, "--catalog": cfg.catalog})
    check_output_dir(Path(cfg.output_dir))
    dataset = load_dataset(cfg.dataset, hint="set [edit] dataset or --dataset; `dp toy` makes one")
    jobs = plan_jobs(dataset, load_catalog(cfg.catalog), cfg,
                     types_of=lambda records: present_types(dataset, records, cfg.types))
    check_jobs(dataset, jobs)
    return dataset, jobs


def run_dataset_edit(cfg, on_progress: ProgressFn | None = None, prepared: PreparedEdit | None = None) -> EditSummary:
    """Edit a dataset as `[edit]` says; resumable, and sharded when several processes run."""
    # 1. Plan and check everything before writing anything
    p = prepared or prepare_dataset_edit(cfg)
    dataset, jobs, model_ref, pipe, state = p.dataset, p.jobs, p.model_ref, p.pipe, p.state

    # 2. What is left, and this process's share (every n-th job of the plan: independent of timing)
    out = Path(cfg.output_dir)
    if state.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for folder in (out, out / "images", out / "masks"):  # temporary files of a killed run
            remove_stale_temps(folder)
        if state.num_processes == 1:
            merge_manifest(out, {j.id: j.index for j in jobs})  # fold shards of an interrupted distributed run
    state.wait_for_everyone()
    done = finished_ids(out)
    mine = [j for j in jobs if j.index % state.num_processes == state.process_index and j.id not in done]
    state.wait_for_everyone()  # everybody has read the old state before anyone appends

    # 3. Edit in batches: images atomically, then their manifest lines (fsynced)
    target = out / MANIFEST if state.num_processes == 1 else shard_path(out, state.process_index,
                                                                           state.num_processes)
    start, edited, seeds = time.perf_counter(), 0, 0
    per_call = max(1, cfg.batch_size // cfg.candidates)  # batch_size counts images, candidates included

    def write(job: EditJob, outcome: EditOutcome) -> None:
        save_image_atomic(outcome.image, out / "images" / job.filename)
        save_image_atomic(outcome.mask, out / "masks" / job.filename)
        log.append(manifest_row(job, dataset, outcome, model_ref, cfg, pipe.resolution).to_json())

    with JsonlAppender(target) as log, Overlap(lambda jobs: [_load_input(dataset, j) for j in jobs], write) as io:
        for batch, inputs in io.batches([mine[b:b + per_call] for b in range(0, len(mine), per_call)]):
            outcomes = edit_verified(pipe, inputs, cfg)
            seeds += sum(len(o.candidates) for o in outcomes)
            io.write(batch, outcomes)  # written on a background thread while the next batch is edited
            edited += len(batch)
            if on_progress:
                on_progress(edited, len(mine), edited / max(time.perf_counter() - start, 1e-9))
    written = io.written
    seconds = time.perf_counter() - start

    # 4. One manifest at the end; the optional contact sheet
    state.wait_for_everyone()
    summary = EditSummary(out, out / MANIFEST, len(jobs), len(done & {j.id for j in jobs}), written, seconds, state.num_processes)
    summary.extra["seeds"] = seeds  # edited by this process: candidates and retries included
    if state.is_main_process:
        summary.reference_warnings = reference_warnings(jobs)
        summary.status = status_counts(all_rows(out), {j.id for j in jobs})
        summary.extra["kept_with_other_settings"] = kept_with_other_settings(out, jobs, done, model_ref, cfg)
        summary.rows = merge_manifest(out, {j.id: j.index for j in jobs})
        if cfg.contact_sheet:
            from dp_cli.edit.sheet import write_contact_sheet

            summary.contact_sheet = write_contact_sheet(out, out / "contact_sheet.png", cfg.contact_sheet_rows)
    state.wait_for_everyone()
    return summary
