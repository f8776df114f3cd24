"""`dp eval`: retrieval metrics, edit quality and caption quality."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from dp_cli import console
from dp_cli.cli_common import dp_command, setting_option, settings
from dp_cli.config import load_project, resolve_section
from dp_cli.errors import UsageError
from dp_cli.eval.config import EvalConfig

app = typer.Typer(help="Measure retrieval (Rank-k, mAP, mINP), edit quality and caption quality.",
                  no_args_is_help=True)

ModelOpt = Annotated[Optional[str], setting_option(EvalConfig, "model", "--model", "-m")]
DeviceOpt = Annotated[Optional[str], setting_option(EvalConfig, "device")]
BatchOpt = Annotated[Optional[int], setting_option(EvalConfig, "batch_size", "--batch-size")]


def _settings(**flags):
    """The resolved `[eval]` section (flag > env > TOML > default)."""

    return settings(EvalConfig, "eval", **flags)


def _data_dataset() -> tuple[Optional[Path], Optional[str]]:
    """The project's `[data]` dataset (and format), used when `[eval]`/--dataset name none."""
    from dp_cli.data.config import DataConfig

    project = load_project(console.STATE.config, explicit=console.STATE.config is not None)
    data = resolve_section(DataConfig, "data", project, {})
    return data.dataset, (None if data.format == "auto" else data.format)


def _int_list(value: Optional[str], name: str, sep: str = ",") -> Optional[list[int]]:
    """Integers separated by `sep` or by commas (as --help shows a list default)."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.replace(" ", "").replace(sep, ",").split(",") if v]
    except ValueError:
        raise UsageError(f"{name}: expected integers separated by '{sep}', got {value!r}") from None


def _with_progress(total: int, label: str, fn: Callable[[Callable[[int], None]], object]):
    with console.progress(transient=True) as bar:
        task = bar.add_task(label, total=total, status="")
        return fn(lambda n: bar.advance(task, n))


def _load_clip(cfg):
    from dp_cli.eval.embeddings import load_clip

    console.info(f"loading CLIP model {cfg.model}")
    return load_clip(cfg.model, cfg.device)


@app.command("retrieval")
@dp_command
def retrieval(
    dataset: Annotated[Optional[Path], setting_option(EvalConfig, "dataset", "--dataset", "-d")] = None,
    split: Annotated[Optional[str], setting_option(EvalConfig, "split")] = None,
    model: ModelOpt = None,
    queries: Annotated[Optional[Path], setting_option(EvalConfig, "queries")] = None,
    gallery: Annotated[Optional[Path], setting_option(EvalConfig, "gallery")] = None,
    ks: Annotated[Optional[str], setting_option(EvalConfig, "ks")] = None,
    chunk: Annotated[Optional[int], setting_option(EvalConfig, "chunk")] = None,
    image_size: Annotated[Optional[str], setting_option(EvalConfig, "image_size")] = None,
    batch_size: BatchOpt = None,
    device: DeviceOpt = None,
    figure: Annotated[Optional[Path], setting_option(EvalConfig, "figure")] = None,
    save_embeddings: Annotated[Optional[Path], typer.Option(
        help="Folder to write queries.npy/gallery.npy (+ .ids.txt) computed from the model.")] = None,
) -> None:
    """Text-to-person retrieval: Rank-k, mAP and mINP of a CLIP model on a dataset split, or of embedding files."""
    cfg = _settings(dataset=dataset, split=split, model=model, queries=queries, gallery=gallery,
                   ks=_int_list(ks, "--ks"), chunk=chunk, image_size=_int_list(image_size, "--image-size", "x"),
                   batch_size=batch_size, device=device, figure=figure)
    q_emb, q_ids, g_emb, g_ids, source = _retrieval_inputs(cfg, save_embeddings)
    from dp_cli.eval.embeddings import resolve_device
    from dp_cli.eval.retrieval import retrieval_metrics

    metrics = retrieval_metrics(q_emb, q_ids, g_emb, g_ids, ks=cfg.ks, chunk=cfg.chunk,
                                cmc_max_rank=cfg.cmc_max_rank, device=resolve_device(cfg.device))
    if metrics.missing_queries:
        console.warn(f"{metrics.missing_queries} queries have no gallery image of their person; left out of the averages")
    payload = {"source": source, **metrics.to_dict()}
    if cfg.figure:
        from dp_cli.eval.cmc import save_cmc

        title = f"CMC ({source}): R1 {metrics.rank.get(1, metrics.rank[min(metrics.rank)]):.1f}, mAP {metrics.mAP:.1f}"
        payload["figure"] = str(save_cmc(cfg.figure, {source: metrics.cmc}, title))
    console.render_summary("Retrieval", metrics.summary_rows(), payload)


def _retrieval_inputs(cfg, save_to: Optional[Path]):
    from dp_cli.eval.embeddings import load_embedding_pair

    if cfg.queries or cfg.gallery:
        if not (cfg.queries and cfg.gallery):
            raise UsageError("--queries and --gallery go together (one embedding file each)")
        return (*load_embedding_pair(cfg.queries, cfg.gallery), f"{cfg.queries.name} vs {cfg.gallery.name}")
    fmt = None
    if cfg.dataset is None:
        cfg.dataset, fmt = _data_dataset()
    if not (cfg.dataset and cfg.model):
        raise UsageError("give --dataset (or [data] dataset) and --model (CLIP), or --queries and --gallery "
                         "(embedding files)")
    emb = _embed(cfg, fmt)
    if save_to:
        from dp_cli.eval.embeddings import save_embeddings

        save_embeddings(save_to / "queries.npy", emb.query_emb, emb.query_ids)
        save_embeddings(save_to / "gallery.npy", emb.gallery_emb, emb.gallery_ids)
        console.info(f"embeddings written to {save_to}")
    return emb.query_emb, emb.query_ids, emb.gallery_emb, emb.gallery_ids, f"{Path(cfg.model).name} on {cfg.split}"


def _embed(cfg, fmt: Optional[str]):
    from dp_cli.data.loading import load_dataset
    from dp_cli.eval.embeddings import embed_dataset

    ds = load_dataset(cfg.dataset, fmt)
    clip, tokenizer = _load_clip(cfg)
    recs = ds.split(cfg.split)
    total = len(recs) + sum(len(r.captions) for r in recs)
    return _with_progress(total, "embedding", lambda cb: embed_dataset(
        clip, tokenizer, ds, cfg.split, cfg.image_size, cfg.mean, cfg.std, cfg.batch_size, cfg.max_text_length, cb))


@app.command("edits")
@dp_command
def edits(
    manifest: Annotated[Path, typer.Argument(help="edits.jsonl written by `dp edit`.")],
    model: ModelOpt = None,
    annotations: Annotated[Optional[Path], typer.Option(
        help="annotations.jsonl: its descriptions are CLIP-scored instead of the edit prompts.")] = None,
    dilate: Annotated[Optional[int], setting_option(EvalConfig, "dilate")] = None,
    batch_size: BatchOpt = None,
    device: DeviceOpt = None,
    report: Annotated[Optional[Path], typer.Option(
        help="Also write report.html and contact_sheet.png (pass/fail, failures first) into this folder.")] = None,
) -> None:
    """Edit quality: preservation outside the masks (PSNR, SSIM), colour fidelity where truth is known, CLIP
    scores, and the verifier's pass / fail counts."""
    from dp_cli.data.handoff import read_descriptions
    from dp_cli.eval.edits import evaluate_edits, read_manifest

    cfg = _settings(model=model, dilate=dilate, batch_size=batch_size, device=device)
    descriptions = read_descriptions(annotations) if annotations else None
    clip = _load_clip(cfg) if cfg.model else None
    total = len(read_manifest(manifest))
    quality = _with_progress(total, "scoring edits", lambda cb: evaluate_edits(
        manifest, clip=clip, dilate=cfg.dilate, sigma=cfg.ssim_sigma, descriptions=descriptions,
        batch_size=cfg.batch_size, progress=cb))
    payload = quality.to_dict()
    if report is not None:
        payload["report"] = _edit_report(manifest, report, quality)
    console.render_summary(f"Edit quality ({manifest})", quality.summary_rows(), payload)
    for note in quality.notes:
        console.warn(note)


def _edit_report(manifest: Path, folder: Path, quality) -> dict[str, str]:
    from dp_cli.edit.report import captions_of, write_edit_report
    from dp_cli.edit.sheet import write_contact_sheet

    folder.mkdir(parents=True, exist_ok=True)
    edits_dir = manifest.parent
    page = write_edit_report(edits_dir, folder / "report.html", title=f"dp edit report: {manifest}",
                             summary=quality.summary_rows())
    sheet = write_contact_sheet(edits_dir, folder / "contact_sheet.png", max_rows=64, captions=captions_of(edits_dir))
    console.info(f"report: {page}  contact sheet: {sheet}")
    return {"html": str(page), "contact_sheet": str(sheet)}




@app.command("captions")
@dp_command
def captions(
    annotations: Annotated[Path, typer.Argument(help="annotations.jsonl written by `dp annotate`.")],
    edits_path: Annotated[Path, typer.Option("--edits", "-e", help="The edits.jsonl the annotations were made from.")],
    dataset: Annotated[Optional[Path], typer.Option(
        "--dataset", "-d", help="Source dataset for length/vocabulary comparison (default: the edits' source).")] = None,
) -> None:
    """Caption quality: new attributes named, replaced ones gone, length and vocabulary vs the source captions."""
    from dp_cli.eval.captions import evaluate_captions, source_captions_for
    from dp_cli.data.loading import load_dataset

    if dataset is not None:
        source = [c for r in load_dataset(dataset).records for c in r.captions]
    else:
        source = source_captions_for(edits_path)
    quality = evaluate_captions(annotations, edits_path, source)
    console.render_summary(f"Caption quality ({annotations})", quality.summary_rows(), quality.to_dict())
