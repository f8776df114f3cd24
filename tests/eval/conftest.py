"""Fixtures of the eval tests: a tiny CLIP saved with save_pretrained, a tiny person dataset, edits."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

COLORS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "yellow": (230, 210, 40),
          "white": (245, 245, 245), "black": (20, 20, 20)}
H, W = 32, 16
UPPER = (slice(10, 20), slice(3, 13))  # rows, cols of the upper clothes (ATR label 4)
HAIR = (slice(0, 5), slice(4, 12))  # ATR label 2


def write_tiny_clip(folder: Path) -> Path:
    """A 1-layer CLIP (text + vision) and a character-level CLIP tokenizer, saved like users have them."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    chars = list(string.ascii_lowercase) + list(string.digits) + list(".,'-!?")
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=32).save_pretrained(folder)
    eos = vocab["<|endoftext|>"]
    cfg = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=8), projection_dim=8)
    import torch

    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    return write_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def person_image(upper: tuple, hair: tuple, bg: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A 32x16 figure: image (H, W, 3) uint8 and its ATR parsing map."""
    img = np.full((H, W, 3), bg, np.uint8)
    img[::4] = bg - 40  # some texture so SSIM is not trivial
    parsing = np.zeros((H, W), np.uint8)
    img[UPPER], parsing[UPPER] = upper, 4
    img[HAIR], parsing[HAIR] = hair, 2
    return img, parsing


def write_dataset(root: Path, persons: int = 4, per_person: int = 2, split: str = "test") -> Path:
    """A native dataset with toy truth in extra["toy"] (upper clothes colour) and parsing maps."""
    root.mkdir(parents=True, exist_ok=True)
    names = list(COLORS)
    lines = []
    for p in range(persons):
        color = names[p % len(names)]
        for k in range(per_person):
            rid = f"p{p}_{k}"
            img, parsing = person_image(COLORS[color], COLORS["black"], bg=100 + 20 * k)
            (root / "images").mkdir(exist_ok=True)
            Image.fromarray(img).save(root / "images" / f"{rid}.png")
            Image.fromarray(parsing, mode="L").save(root / "images" / f"{rid}_parsing.png")
            toy = {"attributes": {"uppercloth": {"label": f"{color} t-shirt", "color": list(COLORS[color]),
                                                 "pattern": "plain", "noun": "t-shirt"},
                                  "hair": {"label": "black hair", "color": list(COLORS["black"]),
                                           "pattern": "plain", "noun": "hair"}}}
            lines.append({"id": rid, "image": f"images/{rid}.png", "person_id": p, "split": split,
                          "captions": [f"A person with black hair wearing a {color} t-shirt.",
                                       f"The person wears a {color} t-shirt and grey pants."],
                          "parsing": f"images/{rid}_parsing.png", "extra": {"toy": toy}})
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (root / "dataset.json").write_text(json.dumps({"format": "dp-native", "version": 1, "label_set": "atr",
                                                   "name": "tiny"}))
    return root


@pytest.fixture()
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "ds")


def write_reference(folder: Path, color: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{color}.png"
    Image.fromarray(np.full((16, 16, 3), COLORS[color], np.uint8)).save(path)
    return path


def write_edit(out: Path, ds: Path, source_id: str, k: int, new_upper: tuple | None, ref_color: str,
               replaced: str | None = None) -> dict:
    """An edited image: the source with its upper clothes painted `new_upper` (None: unchanged)."""
    src = np.asarray(Image.open(ds / "images" / f"{source_id}.png").convert("RGB")).copy()
    mask = np.zeros((H, W), np.uint8)
    mask[UPPER] = 255
    if new_upper is not None:
        src[UPPER] = new_upper
    eid = f"{source_id}__v{k}"
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(src).save(out / "images" / f"{eid}.png")
    Image.fromarray(mask, mode="L").save(out / "masks" / f"{eid}.png")
    ref = write_reference(out / "refs", ref_color)
    return {"id": eid, "image": f"images/{eid}.png", "mask": f"masks/{eid}.png", "source_id": source_id,
            "source_image": str(ds / "images" / f"{source_id}.png"), "source_dataset": str(ds),
            "person_id": int(source_id[1]), "variant": f"{source_id[1]}__v{k}", "split": "train",
            "base_description": "A person with black hair wearing a red t-shirt.",
            "prompt": f"A person with black hair wearing a {ref_color} t-shirt.",
            "reference_attribute_list": [{"type": "uppercloth", "label": f"{ref_color} t-shirt", "image": str(ref),
                                          "replaced": replaced, "added_phrase": False,
                                          "color": list(COLORS[ref_color])}],
            "seed": k, "model": "test", "settings": {}}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture()
def kit():
    """The helpers above (test modules cannot import conftest under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(COLORS=COLORS, write_edit=write_edit, write_jsonl=write_jsonl,
                                 write_dataset=write_dataset, write_tiny_clip=write_tiny_clip,
                                 person_image=person_image)
