"""Train the baseline twice (original vs grown training set) per seed and compare on one test split.

One --output-dir holds one experiment: results.json lists every run trained into it, with the settings they
share. A rerun adds to it: runs already there are kept (and not trained again), new seeds or training sets are
trained, and the means and the gain are computed over every run the folder holds. Runs with other settings
cannot join it (their rows would not be comparable), so such a rerun is refused before any training.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from dp_cli.baseline.config import BaselineConfig
from dp_cli.baseline.data import RetrievalItem, train_items
from dp_cli.baseline.trainer import ProgressFn, RunResult, train_run
from dp_cli.data.dataset import PersonDataset
from dp_cli.errors import ConfigError, DataError
from dp_cli.fsutil import write_json_atomic

METRICS = ("R1", "R5", "R10", "mAP", "mINP")
NAMES = ("original", "grown")
RESULTS = "results.json"
# What a run's numbers depend on besides its seed and training set: every run of one folder shares these.
SHARED_SETTINGS = ("clip_model", "dataset", "dataset_format", "image_size", "batch_size", "epochs", "lr",
                   "weight_decay", "warmup_epochs", "temperature", "losses", "max_text_length", "mixed_precision")
# ... and what the grown runs depend on as well (the generated records).
GROWN_SETTINGS = ("edits", "annotations", "include_failed_edits")


@dataclass
class GainReport:
    """Both rows per seed, their difference, and mean/spread over seeds."""

    runs: list[RunResult] = field(default_factory=list)
    generated_records: int = 0
    settings: dict = field(default_factory=dict)  # SHARED_SETTINGS and the data's size, as JSON values
    grown_settings: dict = field(default_factory=dict)  # GROWN_SETTINGS and generated_records
    kept: list[tuple[str, int]] = field(default_factory=list)  # (name, seed) of runs read from results.json
    skipped: list[tuple[str, int]] = field(default_factory=list)  # asked for, but already in results.json

    def rows(self, name: str) -> list[RunResult]:
        return [r for r in self.runs if r.name == name]

    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})

    def mean(self, name: str) -> dict[str, float]:
        return {m: statistics.fmean(r.metrics[m] for r in self.rows(name)) for m in METRICS if self.rows(name)}

    def spread(self, name: str) -> dict[str, float]:
        rows = self.rows(name)
        return {m: statistics.stdev(r.metrics[m] for r in rows) if len(rows) > 1 else 0.0 for m in METRICS}

    def paired_seeds(self) -> list[int]:
        """The seeds with both an original and a grown run: those the gain is over."""
        return sorted({r.seed for r in self.rows("original")} & {r.seed for r in self.rows("grown")})

    def gain(self) -> dict[str, float]:
        """Mean over the paired seeds of (grown - original), per metric."""
        pairs = [(o, g) for o in self.rows("original") for g in self.rows("grown") if o.seed == g.seed]
        if not pairs:
            return {}
        return {m: statistics.fmean(g.metrics[m] - o.metrics[m] for o, g in pairs) for m in METRICS}

    def add(self, run: RunResult) -> None:
        self.runs.append(run)
        self.runs.sort(key=lambda r: (r.seed, NAMES.index(r.name)))

    def to_json(self) -> dict:
        return {"generated_records": self.generated_records,
                "settings": self.settings, "grown_settings": self.grown_settings,
                "runs": [{"name": r.name, "seed": r.seed, "train_items": r.train_items,
                          "train_persons": r.train_persons, "metrics": r.metrics, "final_loss": r.final_loss,
                          "seconds": round(r.seconds, 2), "model_dir": str(r.model_dir)} for r in self.runs],
                "mean": {n: self.mean(n) for n in NAMES if self.rows(n)},
                "std": {n: self.spread(n) for n in NAMES if self.rows(n)},
                "gain": self.gain(), "gain_seeds": self.paired_seeds()}


def run_gain(cfg: BaselineConfig, dataset: PersonDataset, generated: list[RetrievalItem],
             on_step: ProgressFn | None = None, on_run=None) -> GainReport:
    """For each seed: train on the original train split and on original + generated; same settings.

    Runs already in the output folder's results.json are kept and not trained again; results.json is
    rewritten (atomically) after each run, with every run the folder holds."""
    from dp_cli.distributed import make_accelerator

    if cfg.runs != "original" and not generated and (cfg.edits or cfg.annotations):
        raise ConfigError("no generated records found in the given edits/annotations",
                          hint="run `dp edit` and `dp annotate` first, or check the paths")
    sets: dict[str, list[RetrievalItem]] = {"original": train_items(dataset)}
    sets["grown"] = train_items(dataset, generated)
    names = list(NAMES) if cfg.runs == "both" else [cfg.runs]
    accelerator = make_accelerator(mixed_precision=cfg.mixed_precision)
    path = cfg.output_dir / RESULTS
    report = GainReport(generated_records=len(generated),  # generated (image, caption) pairs
                        settings=_json(run_settings(cfg, dataset, len(sets["original"]), accelerator.num_processes)),
                        grown_settings=_json(grown_settings(cfg, len(generated))))
    earlier = load_results(path)
    if earlier is not None:
        merge_earlier(report, earlier, path, trains_grown="grown" in names)
    done = set(report.kept)
    report.skipped = [(name, seed) for seed in dict.fromkeys(cfg.seeds) for name in names if (name, seed) in done]
    for seed in dict.fromkeys(cfg.seeds):
        for name in names:
            if (name, seed) in done:
                continue
            if on_run:
                on_run(name, seed)
            report.add(train_run(cfg, accelerator, sets[name], dataset, seed, cfg.output_dir, name, on_step))
            done.add((name, seed))
            if accelerator.is_main_process:  # after each run: a later failure loses nothing finished
                write_json_atomic(path, report.to_json())
    return report


def run_settings(cfg: BaselineConfig, dataset: PersonDataset, n_train: int, processes: int) -> dict:
    """The settings every run of one folder must share, plus the size of the data it was trained on."""
    values = {key: getattr(cfg, key) for key in SHARED_SETTINGS}
    values["dataset"] = _abs(cfg.dataset)
    if cfg.clip_model is not None and Path(cfg.clip_model).exists():  # a local folder, not a hub id
        values["clip_model"] = _abs(Path(cfg.clip_model))
    # the global batch (and so the steps) depends on the number of processes
    return {**values, "processes": processes, "train_items": n_train,
            "test_records": len(dataset.split("test"))}


def grown_settings(cfg: BaselineConfig, n_generated: int) -> dict:
    """What the grown runs depend on besides `run_settings`: the generated records."""
    annotations = cfg.annotations or (cfg.edits.parent / "annotations.jsonl" if cfg.edits else None)
    return {"edits": _abs(cfg.edits), "annotations": _abs(annotations),
            "include_failed_edits": cfg.include_failed_edits, "generated_records": n_generated}


def merge_earlier(report: GainReport, earlier: dict, path: Path, trains_grown: bool) -> None:
    """Add the runs of an earlier results.json to `report`, or refuse when their settings differ.

    The grown runs' settings only matter when the folder holds grown runs and this rerun trains grown ones
    too; a folder that holds grown runs keeps its own (and its generated_records)."""
    runs = [_run_from_json(entry, f"{path}: runs[{i}]") for i, entry in enumerate(earlier["runs"])]
    twice = [f"{r.name} seed {r.seed}" for i, r in enumerate(runs) if (r.name, r.seed) in
             {(o.name, o.seed) for o in runs[:i]}]
    if twice:
        raise DataError(f"{path}: lists {', '.join(twice)} twice",
                        hint="move the file away or fix it, or use another --output-dir; it was left as it is")
    has_grown = any(r.name == "grown" for r in runs)
    diffs = _differences(earlier["settings"], report.settings)
    if has_grown and trains_grown:
        diffs += _differences(earlier["grown_settings"], report.grown_settings)
    if diffs:
        raise DataError(f"{path.parent}: its runs were trained with other settings ({'; '.join(diffs)}); new runs "
                        "would not be comparable with them", hint="use another --output-dir for these settings, or "
                                                                  "the folder's settings to add seeds or runs to it")
    if has_grown:
        report.grown_settings = earlier["grown_settings"]
        report.generated_records = earlier["grown_settings"].get("generated_records", report.generated_records)
    for run in runs:
        report.add(run)
    report.kept = [(r.name, r.seed) for r in runs]


def load_results(path: Path) -> dict | None:
    """The results.json of an earlier run into this folder (None when there is none), checked enough to merge."""
    if not path.exists():
        return None
    hint = "move it away or fix it, or use another --output-dir; it was left as it is"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: the earlier results are not UTF-8 text", hint=hint) from None
    except ValueError as exc:
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise DataError(f"{path}: the earlier results are malformed JSON ({msg})", hint=hint) from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise DataError(f"{path}: the earlier results have no list of runs", hint=hint)
    if not isinstance(data.get("settings"), dict) or not isinstance(data.get("grown_settings"), dict):
        raise DataError(f"{path}: the earlier results do not record the settings of their runs (written by an "
                        "older dp), so new runs cannot be checked against them",
                        hint="use another --output-dir; this one was left as it is")
    return data


def _run_from_json(entry, where: str) -> RunResult:
    try:
        if not isinstance(entry, dict):
            raise TypeError("not an object")
        name, seed, metrics = entry["name"], entry["seed"], entry["metrics"]
        if name not in NAMES or not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"name {name!r}, seed {seed!r}")
        if not isinstance(metrics, dict) or any(not isinstance(metrics.get(m), (int, float)) for m in METRICS):
            raise ValueError(f"metrics must hold numbers for {', '.join(METRICS)}")
        return RunResult(name, seed, int(entry["train_items"]), int(entry["train_persons"]),
                         {m: float(metrics[m]) for m in METRICS}, float(entry["final_loss"]),
                         float(entry["seconds"]), Path(entry["model_dir"]))
    except KeyError as exc:
        problem = f"no {exc.args[0]!r}"
    except (TypeError, ValueError) as exc:
        problem = str(exc)
    raise DataError(f"{where}: not a run of dp baseline ({problem})",
                    hint="move the file away or fix it, or use another --output-dir; it was left as it is")


def _differences(before: dict, now: dict) -> list[str]:
    """'epochs: 2 there, 1 now' for each key whose value differs."""
    return [f"{key}: {_shown(before.get(key))} there, {_shown(now.get(key))} now"
            for key in dict.fromkeys([*now, *before]) if not _equal(before.get(key), now.get(key))]


def _equal(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def _shown(value) -> str:
    if value is None:
        return "unset"
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _abs(path: Path | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


def _json(values: dict) -> dict:
    """As results.json stores them (tuples become lists, paths strings), so that a reread compares equal."""
    return json.loads(json.dumps(values, default=str))
