"""Fixtures: a tiny random SegFormer saved like a user's model folder, and small native datasets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dp_cli.data.attributes import ATR_LABELS

SIZES = [(48, 24), (40, 20), (50, 26)]  # (height, width): sizes differ per image on purpose


def tiny_segformer(folder: Path, labels: tuple[str, ...] = ATR_LABELS, head: bool = True) -> Path:
    """A 2-stage SegFormer with tiny widths, saved with save_pretrained plus a (PIL) image processor."""
    import torch
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerModel
    from transformers.models.segformer.image_processing_pil_segformer import SegformerImageProcessorPil

    torch.manual_seed(0)
    cfg = SegformerConfig(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
                          decoder_hidden_size=16, num_labels=len(labels),
                          id2label={i: n.title() for i, n in enumerate(labels)},
                          label2id={n.title(): i for i, n in enumerate(labels)})
    model = SegformerForSemanticSegmentation(cfg) if head else SegformerModel(cfg)
    if head:  # large random classifier weights so the random model predicts several labels
        with torch.no_grad():
            model.decode_head.classifier.weight.normal_(0, 2.0)
    model.save_pretrained(folder)
    SegformerImageProcessorPil(size={"height": 64, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def segformer_dir(tmp_path_factory) -> Path:
    return tiny_segformer(tmp_path_factory.mktemp("models") / "tiny-segformer")


def person_map(h: int, w: int, seed: int) -> np.ndarray:
    """A crafted ATR map: hair, face, upper clothes, pants, shoes (and a bag on odd seeds)."""
    m = np.zeros((h, w), np.uint8)
    c = w // 2
    m[2:8, c - 4:c + 4] = ATR_LABELS.index("hair")
    m[8:12, c - 3:c + 3] = ATR_LABELS.index("face")
    m[12:26, c - 6:c + 6] = ATR_LABELS.index("upper-clothes")
    m[26:h - 4, c - 5:c + 5] = ATR_LABELS.index("pants")
    m[h - 4:h - 1, c - 5:c] = ATR_LABELS.index("left-shoe")
    m[h - 4:h - 1, c:c + 5] = ATR_LABELS.index("right-shoe")
    if seed % 2:
        m[14:20, c + 6:c + 9] = ATR_LABELS.index("bag")
    return m


def write_dataset(root: Path, n: int = 5, maps: bool = True, label_set: str = "atr") -> Path:
    """A native dataset of `n` images (nested folder, varied sizes), with exact parsing maps."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        h, w = SIZES[i % len(SIZES)]
        rel = f"imgs/p{i // 2}/{i:03d}.jpg" if i % 2 else f"imgs/{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / rel)
        row = {"id": f"r{i}", "image": rel, "person_id": i // 2, "split": "train" if i < n - 1 else "test",
               "captions": [f"a person with black hair number {i}"]}
        if maps:
            mrel = f"maps/{i:03d}.png"
            (root / "maps").mkdir(exist_ok=True)
            Image.fromarray(person_map(h, w, i), mode="L").save(root / mrel)
            row["parsing"] = mrel
        rows.append(row)
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "dataset.json").write_text(json.dumps({"format": "dp-native", "version": 1, "label_set": label_set,
                                                   "name": "tiny"}))
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "src")


@pytest.fixture
def seg_kit():
    """This folder's helpers, for tests (importlib mode cannot import conftest)."""
    import types

    return types.SimpleNamespace(tiny_segformer=tiny_segformer, write_dataset=write_dataset, person_map=person_map,
                                 SIZES=SIZES)


@pytest.fixture
def dp():
    """Run `dp ARGS...` in-process; returns typer's Result (stdout: --json, output: everything)."""
    from typer.testing import CliRunner

    from dp_cli.app import app

    def run(*args: str, env: dict | None = None):
        return CliRunner().invoke(app, [str(a) for a in args], env=env)

    return run
