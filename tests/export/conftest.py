"""Fixtures for export tests: fake `dp edit` / `dp annotate` outputs, and IRRA's reader contract."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

IRRA = {"cuhk-pedes": ("reid_raw.json", "file_path", 1), "icfg-pedes": ("ICFG-PEDES.json", "file_path", 0),
        "rstpreid": ("data_captions.json", "img_path", 0)}


def irra_contract(root: Path, fmt: str) -> dict[str, set[int]]:
    """What IRRA's datasets/{cuhkpedes,icfgpedes,rstpreid}.py do and assert; returns the ids per split."""
    name, path_key, offset = IRRA[fmt]
    img_dir = os.path.join(root, "imgs/")
    assert os.path.exists(root / name) and os.path.exists(img_dir)
    annos = json.loads((root / name).read_text())
    by_split: dict[str, list[dict]] = {"train": [], "test": [], "val": []}
    for anno in annos:  # IRRA: 'train', 'test', everything else -> val
        by_split[anno["split"] if anno["split"] in ("train", "test") else "val"].append(anno)
        assert anno["split"] in ("train", "test", "val")
    ids: dict[str, set[int]] = {}
    for split, items in by_split.items():
        pid_container = set()
        for anno in items:
            pid = int(anno["id"]) - (offset if split == "train" else 0)
            pid_container.add(pid)
            assert os.path.isfile(os.path.join(img_dir, anno[path_key]))
            assert isinstance(anno["captions"], list) and all(isinstance(c, str) and c for c in anno["captions"])
        if split == "train":
            for idx, pid in enumerate(pid_container):  # "check pid begin from 0 and no break"
                assert idx == pid, f"idx: {idx} and pid: {pid} are not match"
        ids[split] = pid_container
    return ids


def write_edits(folder: Path, dataset_root: Path, sources: list[tuple[str, int, str]],
                annotated: set[str] | None = None) -> tuple[Path, Path]:
    """Fake `dp edit` + `dp annotate` outputs: `sources` are (source id, source person id, variant)."""
    folder.mkdir(parents=True, exist_ok=True)
    edits, notes = [], []
    for k, (sid, pid, variant) in enumerate(sources):
        eid = f"{sid}__e{k}"
        Image.new("RGB", (2, 4), (0, 200, 10 * k)).save(_mkdir(folder / "images" / f"{eid}.png"))
        edits.append({"id": eid, "image": f"images/{eid}.png", "mask": f"masks/{eid}.png", "source_id": sid,
                      "source_image": str(dataset_root / "x.png"), "source_dataset": str(dataset_root),
                      "person_id": pid, "variant": variant, "split": "train",
                      "base_description": f"base description of {sid}", "prompt": "a person",
                      "reference_attribute_list": [{"type": "uppercloth", "label": "green coat"}],
                      "seed": k, "model": "tiny", "settings": {}})
        if annotated is None or eid in annotated:
            notes.append({"key": eid, "id": eid, "description": f"A person in a green coat, edit {k}.",
                          "attributes": ["green coat"], "model": "fake", "prompt_version": "1",
                          "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    (folder / "edits.jsonl").write_text("".join(json.dumps(e) + "\n" for e in edits))
    (folder / "annotations.jsonl").write_text("".join(json.dumps(n) + "\n" for n in notes))
    return folder / "edits.jsonl", folder / "annotations.jsonl"


def _mkdir(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def export_kit():
    import types

    return types.SimpleNamespace(irra_contract=irra_contract, write_edits=write_edits)
