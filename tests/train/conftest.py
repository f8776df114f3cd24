"""Fixtures for the training tests: a tiny model on disk and a tiny native dataset with parsing maps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# The test machine is shared: one intra-op thread per process avoids OpenMP thrashing (10x faster here).
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

HEIGHT, WIDTH = 64, 32
COLOURS = {"red": (200, 30, 30), "blue": (30, 60, 200), "green": (30, 160, 60), "yellow": (220, 200, 40),
           "black": (20, 20, 20), "white": (235, 235, 235), "brown": (120, 70, 30), "grey": (128, 128, 128)}
# ATR label ids: 2 hair, 4 upper-clothes, 6 pants, 9/10 shoes, 11 face
REGIONS = [(2, 2, 8, 10, 22), (11, 8, 14, 11, 21), (4, 14, 34, 7, 25), (6, 34, 56, 9, 23), (9, 56, 62, 9, 15),
           (10, 56, 62, 17, 23)]


def write_person(root: Path, rid: str, rng: np.random.Generator) -> dict:
    """One figure: hair, face, shirt, pants, shoes on a noisy background, with its ATR parsing map."""
    names = list(COLOURS)
    hair, shirt, pants = (names[i] for i in rng.choice(len(names), 3, replace=False))
    img = rng.integers(60, 200, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    parsing = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    colour = {2: COLOURS[hair], 11: (230, 190, 160), 4: COLOURS[shirt], 6: COLOURS[pants], 9: (10, 10, 10),
              10: (10, 10, 10)}
    for label, y0, y1, x0, x1 in REGIONS:
        img[y0:y1, x0:x1] = colour[label]
        parsing[y0:y1, x0:x1] = label
    Image.fromarray(img).save(root / "images" / f"{rid}.png")
    Image.fromarray(parsing, mode="L").save(root / "parsing" / f"{rid}.png")
    return {"caption": f"A person with {hair} hair is wearing a {shirt} shirt and {pants} pants.",
            "alt": f"The man has {hair} hair, a {shirt} t-shirt, {pants} jeans and black shoes."}


def write_tiny_dataset(root: Path, n: int = 16, seed: int = 0, parsing: bool = True) -> Path:
    """A native dataset of n images of n//2 persons, all in the train split, with parsing maps."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "parsing").mkdir(exist_ok=True)
    rows = []
    for i in range(n):
        rid = f"p{i:03d}"
        caps = write_person(root, rid, rng)
        row = {"id": rid, "image": f"images/{rid}.png", "person_id": i // 2, "split": "train",
               "captions": [caps["caption"], caps["alt"]]}
        if parsing:
            row["parsing"] = f"parsing/{rid}.png"
        rows.append(row)
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "dataset.json").write_text(json.dumps({"format": "dp-native", "version": 1, "label_set": "atr",
                                                   "name": "tiny"}), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from dp_models.tiny import write_tiny_pretrained

    return write_tiny_pretrained(tmp_path_factory.mktemp("tiny-model"), height=HEIGHT, width=WIDTH, seed=0)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-data"), n=16)


@pytest.fixture()
def train_args(tiny_model, tiny_dataset, tmp_path):
    """Flags of a short CPU run on the tiny model; tests add or override what they need."""
    def make(out: Path | None = None, **over) -> list[str]:
        opts = {"pretrained-model": str(tiny_model / "sd"), "image-encoder": str(tiny_model / "clip-vision"),
                "dataset": str(tiny_dataset), "output-dir": str(out or tmp_path / "run"), "resolution": "64x32",
                "train-batch-size": "4", "max-train-steps": "3", "checkpointing-steps": "100", "lr": "1e-4",
                "mixed-precision": "no", "seed": "7"}
        for k, v in over.items():  # None drops a default flag
            if v is None:
                opts.pop(k.replace("_", "-"), None)
            else:
                opts[k.replace("_", "-")] = str(v)
        args = []
        for k, v in opts.items():
            args += [f"--{k}"] if v == "" else [f"--{k}", v]
        return args
    return make


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.delenv("DP_CONFIG", raising=False)
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def dataset_writer():
    """write_tiny_dataset(root, n=16, seed=0, parsing=True) -> root."""
    return write_tiny_dataset


@pytest.fixture()
def dp(tmp_path, monkeypatch):
    """`dp(*args)` -> click Result of the in-process app (stdout and stderr apart), cwd in tmp_path."""
    from typer.testing import CliRunner

    from dp_cli import console
    from dp_cli.app import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DP_DATASET", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, [str(a) for a in args])
        console.STATE = console.AppState()
        return result

    return invoke


def read_losses(out: Path) -> dict[int, float]:
    """step -> loss from train_log.jsonl (the last line wins for a step written twice)."""
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: r["loss"] for r in rows}


@pytest.fixture(scope="session")
def losses_of():
    return read_losses
