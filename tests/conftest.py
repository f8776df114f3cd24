"""Shared test helpers: tiny person datasets in every format, fake edits, IRRA's reader contract, checksums."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from PIL import Image

# Format name -> (annotation file, key of the image path, on-disk id of the first train person).
TBPS_LAYOUT = {"cuhk-pedes": ("reid_raw.json", "file_path", 1), "icfg-pedes": ("ICFG-PEDES.json", "file_path", 0),
               "rstpreid": ("data_captions.json", "img_path", 0)}


def child_env(*, cpu: bool = False, drop: tuple[str, ...] = ("DP_",), **extra: str) -> dict[str, str]:
    """Environment for a `python -m dp_cli` child process: this checkout first on PYTHONPATH (the caller's
    entries kept), no variables starting with `drop`, no rank variables. cpu=True hides the GPUs: the
    multi-process tests run on CPU (gloo) everywhere, since one GPU cannot host two ranks."""
    repo = str(Path(__file__).resolve().parents[1])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(drop) and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return {**env, **extra}


@pytest.fixture(scope="session")
def subprocess_env():
    """`child_env` (test modules cannot import conftest under --import-mode=importlib)."""
    return child_env


def tiny_image(path: Path, color=(200, 30, 30), size=(2, 4)) -> None:
    """A real PNG/JPEG of a few pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def write_tbps(root: Path, fmt: str, entries: list[dict], images: bool = True) -> Path:
    """Write a CUHK-PEDES / ICFG-PEDES / RSTPReid folder; entries use `path`, `pid` (on disk), `split`, `captions`."""
    name, key, _ = TBPS_LAYOUT[fmt]
    rows = []
    for i, e in enumerate(entries):
        row = {"split": e["split"], "captions": e["captions"], key: e["path"], "id": e["pid"]}
        if fmt != "rstpreid":
            row["processed_tokens"] = [c.lower().split() for c in e["captions"]]
        rows.append(row)
        if images:
            tiny_image(root / "imgs" / e["path"], color=(10 * i % 255, 100, 50))
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps(rows), encoding="utf-8")
    return root / name


def sample_entries(fmt: str, persons: int = 3, per_person: int = 2) -> list[dict]:
    """Train persons 0..persons-1 (plus the format's id base), then two test persons (and val where it exists)."""
    base = TBPS_LAYOUT[fmt][2] if fmt in TBPS_LAYOUT else 0
    out = []
    splits = [("train", persons), ("test", 2)] + ([("val", 1)] if fmt != "icfg-pedes" else [])
    pid = 0
    for split, n in splits:
        for _ in range(n):
            for k in range(per_person):
                out.append({"path": f"{split}/{pid:04d}/{pid:04d}_{k}.jpg", "pid": pid + base, "split": split,
                            "captions": [f"A person {pid} in a red shirt, view {k}.", f"Person {pid} walking."]})
            pid += 1
    return out


def write_native(root: Path, rows: list[dict], images: bool = True, header: dict | None = None) -> Path:
    """Write a native dataset folder; rows are annotations.jsonl objects."""
    root.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        if images:
            tiny_image(root / row["image"], color=(20 * i % 255, 10, 90))
            if row.get("parsing"):
                (root / row["parsing"]).parent.mkdir(parents=True, exist_ok=True)
                Image.new("L", (2, 4), 4).save(root / row["parsing"])
    (root / "annotations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "dataset.json").write_text(json.dumps(header or {"format": "dp-native", "version": 1,
                                                            "label_set": "atr", "name": "tiny"}))
    return root / "annotations.jsonl"


def native_rows(train_pids=(0, 1, 2), test_pids=(3, 4), per_person: int = 2) -> list[dict]:
    rows = []
    for split, pids in (("train", train_pids), ("test", test_pids)):
        for pid in pids:
            for k in range(per_person):
                rows.append({"id": f"p{pid}_{k}", "image": f"images/p{pid}_{k}.png", "person_id": pid,
                             "split": split, "captions": [f"A man {pid} with black hair and blue jeans."],
                             "parsing": f"parsing/p{pid}_{k}.png", "extra": {"k": k}})
    return rows


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` (relative path -> digest); {} when it does not exist."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tbps(tmp_path):
    """Factory: `tbps(fmt)` writes a small dataset of that format and returns its folder."""

    def make(fmt: str, name: str | None = None, **kwargs) -> Path:
        root = tmp_path / (name or fmt)
        if fmt == "native":
            write_native(root, native_rows(**kwargs))
        else:
            write_tbps(root, fmt, sample_entries(fmt, **kwargs))
        return root

    return make


@pytest.fixture
def kit():
    """The dataset helpers of this file, for tests (pytest's importlib mode cannot import conftest)."""
    import types

    return types.SimpleNamespace(TBPS_LAYOUT=TBPS_LAYOUT, tiny_image=tiny_image, write_tbps=write_tbps,
                                 sample_entries=sample_entries, write_native=write_native,
                                 native_rows=native_rows, tree_digest=tree_digest)


# --- export helpers ---------------------------------------------------------------------------

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
                annotated: set[str] | None = None, failed: set[int] | None = None) -> tuple[Path, Path]:
    """Fake `dp edit` + `dp annotate` outputs: `sources` are (source id, source person id, variant);
    the edits whose index is in `failed` failed verification."""
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
                      "seed": k, "model": "tiny", "settings": {},
                      "status": "failed" if k in (failed or set()) else "passed"})
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
    """IRRA's reader contract and fake edit/annotate outputs."""
    import types

    return types.SimpleNamespace(irra_contract=irra_contract, write_edits=write_edits)


@pytest.fixture(scope="session")
def hl():
    """tests/models/hub_layouts.py: tiny replicas of hub repositories' layouts (loaded by path: it is no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hub_layouts", Path(__file__).parent / "models" / "hub_layouts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def quiet_compile_trace(monkeypatch):
    """torch.compile writes a DEBUG trace record per graph; pytest's log capture would keep them all (minutes)."""
    import logging

    monkeypatch.setattr(logging.getLogger("torch.__trace"), "propagate", False)
