"""Train the baseline twice (original vs grown training set) per seed and compare on one test split."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from dp_cli.baseline.config import BaselineConfig
from dp_cli.baseline.data import RetrievalItem, train_items
from dp_cli.baseline.trainer import ProgressFn, RunResult, train_run
from dp_cli.data.dataset import PersonDataset
from dp_cli.errors import ConfigError
from dp_cli.fsutil import write_json_atomic

METRICS = ("R1", "R5", "R10", "mAP", "mINP")


@dataclass
class GainReport:
    """Both rows per seed, their difference, and mean/spread over seeds."""

    runs: list[RunResult] = field(default_factory=list)
    generated_records: int = 0

    def rows(self, name: str) -> list[RunResult]:
        return [r for r in self.runs if r.name == name]

    def mean(self, name: str) -> dict[str, float]:
        return {m: statistics.fmean(r.metrics[m] for r in self.rows(name)) for m in METRICS if self.rows(name)}

    def spread(self, name: str) -> dict[str, float]:
        rows = self.rows(name)
        return {m: statistics.stdev(r.metrics[m] for r in rows) if len(rows) > 1 else 0.0 for m in METRICS}

    def gain(self) -> dict[str, float]:
        """Mean over seeds of (grown - original), per metric."""
        pairs = [(o, g) for o in self.rows("original") for g in self.rows("grown") if o.seed == g.seed]
        if not pairs:
            return {}
        return {m: statistics.fmean(g.metrics[m] - o.metrics[m] for o, g in pairs) for m in METRICS}

    def to_json(self) -> dict:
        return {"generated_records": self.generated_records,
                "runs": [{"name": r.name, "seed": r.seed, "train_items": r.train_items,
                          "train_persons": r.train_persons, "metrics": r.metrics, "final_loss": r.final_loss,
                          "seconds": round(r.seconds, 2), "model_dir": str(r.model_dir)} for r in self.runs],
                "mean": {n: self.mean(n) for n in ("original", "grown") if self.rows(n)},
                "std": {n: self.spread(n) for n in ("original", "grown") if self.rows(n)},
                "gain": self.gain()}


def run_gain(cfg: BaselineConfig, dataset: PersonDataset, generated: list[RetrievalItem],
             on_step: ProgressFn | None = None, on_run=None) -> GainReport:
    """For each seed: train on the original train split and on original + generated; same settings."""
    from dp_cli.distributed import make_accelerator

    if cfg.runs != "original" and not generated and (cfg.edits or cfg.annotations):
        raise ConfigError("no generated records found in the given edits/annotations",
                          hint="run `dp edit` and `dp annotate` first, or check the paths")
    sets: dict[str, list[RetrievalItem]] = {"original": train_items(dataset)}
    sets["grown"] = train_items(dataset, generated)
    names = ["original", "grown"] if cfg.runs == "both" else [cfg.runs]
    accelerator = make_accelerator(mixed_precision=cfg.mixed_precision)
    report = GainReport(generated_records=len(generated))  # generated (image, caption) pairs
    for seed in cfg.seeds:
        for name in names:
            if on_run:
                on_run(name, seed)
            report.runs.append(train_run(cfg, accelerator, sets[name], dataset, seed, cfg.output_dir, name, on_step))
    if accelerator.is_main_process:
        write_json_atomic(cfg.output_dir / "results.json", report.to_json())
    return report
