"""Resolve the baseline's inputs: the person dataset and the generated records."""

from __future__ import annotations

from dp_cli.baseline.config import BaselineConfig
from dp_cli.baseline.data import RetrievalItem, generated_items
from dp_cli.data.dataset import PersonDataset
from dp_cli.errors import ConfigError


def load_inputs(cfg: BaselineConfig) -> tuple[PersonDataset, list[RetrievalItem]]:
    """The dataset (train + test splits) and the generated items (empty without --edits)."""
    from dp_cli.data.loading import load_dataset
    from dp_cli.export import load_generated

    if cfg.dataset is None:
        raise ConfigError("no dataset given", hint="pass --dataset or set [baseline] dataset in dp.toml")
    dataset = load_dataset(cfg.dataset, cfg.dataset_format)
    if not dataset.split("train") or not dataset.split("test"):
        raise ConfigError(f"{cfg.dataset}: the baseline needs both a train and a test split",
                          hint=f"splits found: {', '.join(dataset.counts()) or 'none'}")
    if cfg.edits is None:
        if cfg.runs != "original" and cfg.annotations is not None:
            raise ConfigError("--annotations given without --edits", hint="pass the edits.jsonl they annotate")
        return dataset, []
    generated = load_generated(cfg.edits, dataset, cfg.annotations)
    return dataset, generated_items(generated, dataset)
