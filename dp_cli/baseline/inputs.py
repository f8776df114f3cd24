"""Resolve the baseline's inputs: the person dataset and the generated records."""

from __future__ import annotations

from dp_cli.baseline.config import BaselineConfig
from dp_cli.baseline.data import RetrievalItem, generated_items
from dp_cli.data.dataset import PersonDataset
from dp_cli.errors import ConfigError, DataError, UsageError


def load_inputs(cfg: BaselineConfig) -> tuple[PersonDataset, list[RetrievalItem]]:
    """The dataset (train + test splits) and the generated items (empty without --edits)."""
    from dp_cli.data.loading import load_dataset
    from dp_cli.export import load_generated

    check_clip_model(cfg)
    if cfg.dataset is None:
        raise UsageError("no dataset given", hint="pass --dataset, or set [baseline] dataset or [data] dataset in dp.toml (env DP_DATASET)")
    dataset = load_dataset(cfg.dataset, cfg.dataset_format)
    if not dataset.split("train") or not dataset.split("test"):
        raise ConfigError(f"{cfg.dataset}: the baseline needs both a train and a test split",
                          hint=f"splits found: {', '.join(dataset.counts()) or 'none'}")
    if cfg.edits is None:
        if cfg.runs != "original" and cfg.annotations is not None:
            raise UsageError("--annotations given without --edits", hint="pass the edits.jsonl they annotate")
        if cfg.runs == "grown":
            raise UsageError("--runs grown needs generated records", hint="pass --edits edits.jsonl from `dp edit`")
        return dataset, []
    annotations = cfg.annotations or cfg.edits.parent / "annotations.jsonl"
    if not cfg.edits.is_file():
        raise DataError(f"{cfg.edits}: edits file not found", hint="pass the edits.jsonl written by `dp edit`")
    if not annotations.is_file():
        raise DataError(f"{annotations}: annotations not found",
                        hint=f"run `dp annotate --input {cfg.edits} --output {annotations}`, or pass --annotations")
    generated = load_generated(cfg.edits, dataset, annotations, include_failed_edits=cfg.include_failed_edits)
    return dataset, generated_items(generated, dataset)


def check_clip_model(cfg: BaselineConfig) -> None:
    """A --clip-model that is neither an existing folder nor a hub id fails before any training."""
    from dp_cli.eval.embeddings import check_clip_ref

    if cfg.clip_model is not None:
        check_clip_ref(cfg.clip_model)
