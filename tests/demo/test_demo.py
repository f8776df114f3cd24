"""dp demo: the whole pipeline end to end, and the shipped toy model (issue 8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.edit.runner import TOY_MODEL


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A model folder in the layout `dp train` writes (tiny random weights, 64x32)."""
    from dp_models.dp_model import DPConfig, DPModel
    from dp_models.tiny import write_tiny_pretrained

    root = tmp_path_factory.mktemp("demo-model")
    parts = write_tiny_pretrained(root / "parts", height=64, width=32, seed=0)
    DPModel.from_pretrained_parts(str(parts / "sd"), str(parts / "clip-vision"),
                                  DPConfig(resolution=(64, 32))).save_pretrained(root / "model")
    return root / "model"


@pytest.mark.slow
def test_demo_runs_end_to_end_and_its_outputs_parse(tiny_model, tmp_path):
    out = tmp_path / "demo"
    args = ["--json", "demo", "--out", str(out), "--model", str(tiny_model), "--persons", "3", "--steps", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    edits = [json.loads(line) for line in (out / "edits" / "edits.jsonl").read_text().splitlines()]
    annotations = [json.loads(line) for line in (out / "edits" / "annotations.jsonl").read_text().splitlines()]
    assert len(edits) == 3 * 2 * 2 == payload["edit"]["images"]  # persons x variants x images per person
    passed = [e for e in edits if e["status"] == "passed"]
    # only edits that pass the verifier are annotated and exported (a random model fails most of them)
    assert sorted(a["id"] for a in annotations) == sorted(e["id"] for e in passed)
    assert payload["annotate"]["skipped_failed_edits"] == len(edits) - len(passed)
    quality = payload["edit_quality"]
    assert (quality["verified_passed"], quality["verified_failed"]) == (len(passed), len(edits) - len(passed))
    reid = json.loads((out / "export" / "CUHK-PEDES" / "reid_raw.json").read_text())
    assert payload["export"]["warnings"] == []  # named as IRRA opens it
    assert payload["export"]["train_with"]["IRRA --root_dir"] == str(out.absolute() / "export")
    train_ids = sorted({r["id"] for r in reid if r["split"] == "train"})
    assert train_ids == list(range(1, len(train_ids) + 1))  # CUHK-PEDES: contiguous from 1
    assert sum(r["split"] == "train" for r in reid) == len(passed) + 3 * 2
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.width > 64 and sheet.height > 64
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3 * len(edits[:24]) and "name every new attribute" in page
    assert page.count('<tr class="failed">') == len(edits) - len(passed)
    assert "None" not in page and str(out / "report.html") in page
    if len(passed) < len(edits):  # failures come first
        assert page.index('<tr class="failed">') < page.index('<tr class="passed">') if passed else True
    assert json.loads((out / "demo.json").read_text())["caption_quality"]["num_joined"] == len(passed)
    if passed:  # captions come from the offline backend: every new attribute is named
        assert payload["caption_quality"]["share_names_all_attributes"] == 1.0
    # a rerun replaces the earlier demo's folder
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output


def test_demo_refuses_a_folder_it_did_not_write(tiny_model, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--model", str(tiny_model)])
    assert result.exit_code == 1 and "not written by `dp demo`" in result.output
    assert (out / "keep.txt").read_text() == "precious"


def test_demo_names_a_missing_model(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "not found" in result.output and "Traceback" not in result.output


def test_demo_checks_the_edit_settings_it_passes_on_before_building_anything(tmp_path):
    """[demo] shares dp edit's bounds and type names: a bad value is named as [demo]'s, before the toy world."""
    project = tmp_path / "dp.toml"
    project.write_text('[demo]\ntypes = ["hats"]\n')
    out = tmp_path / "d"
    result = CliRunner().invoke(app, ["-c", str(project), "demo", "--out", str(out)])
    assert result.exit_code == 1 and "[demo] types: unknown attribute type(s) ['hats']" in result.output
    project.write_text('[demo]\ntypes = "hair_uppercloth"\nsteps = 5000\n')
    result = CliRunner().invoke(app, ["-c", str(project), "demo", "--out", str(out)])
    assert result.exit_code == 1 and "[demo] steps" in result.output and "types" not in result.output
    assert "Traceback" not in result.output and not out.exists()


shipped = pytest.mark.skipif(not (TOY_MODEL / "dp_config.json").exists(), reason="no toy model shipped")


@shipped
def test_shipped_model_loads_and_is_deterministic():
    from dp_models.dp_model import DPModel

    model = DPModel.from_pretrained(str(TOY_MODEL))
    assert tuple(model.config.resolution) == (64, 32)
    assert sum(f.stat().st_size for f in TOY_MODEL.rglob("*") if f.is_file()) <= 20 * 2 ** 20
    first, second = (_fixed_edit(seed=3) for _ in range(2))
    assert np.array_equal(first[0], second[0])


def _fixed_edit(seed: int, person: int = 0, item: int = 0, kind: str = "uppercloth"):
    """Edit one fixed toy person's attribute with one catalog item; return (edited, mask, reference colour)."""
    import tempfile

    from dp_cli.data.attributes import attribute_mask
    from dp_cli.data.formats.native import load_native
    from dp_cli.toy.world import generate_world
    from dp_models.edit_pipeline import DPEditPipeline, Reference

    with tempfile.TemporaryDirectory() as tmp:
        ds = generate_world(Path(tmp) / "w", persons=6, seed=99, height=64, width=32, images_per_person=1,
                            test_fraction=0.0, catalog_per_type=6)
        rec = ds.records[person]
        catalog = [json.loads(line) for line in (Path(tmp) / "w" / "catalog" / "catalog.jsonl").read_text().splitlines()]
        entry = [c for c in catalog if c["type"] == kind][item]
        image = Image.open(ds.image_path(rec)).convert("RGB")
        parsing = np.asarray(Image.open(ds.parsing_path(rec)))
        ref = Image.open(Path(tmp) / "w" / "catalog" / entry["image"]).convert("RGB")
        pipe = DPEditPipeline.from_pretrained(str(TOY_MODEL), scheduler="ddim")
        mask = attribute_mask(parsing, kind)
        out = pipe(image, mask, rec.captions[0], [Reference(kind, ref, entry["label"])], seed=seed,
                   num_inference_steps=20, guidance_scale=4.0)
        return np.asarray(out.images[0]), mask, np.array(entry["color"]), np.array(
            rec.extra["toy"]["attributes"][kind]["color"])


@shipped
@pytest.mark.slow
def test_shipped_model_paints_reference_colours_on_fixed_edits():
    closer = 0
    cases = [(p, i) for p in range(3) for i in (1, 4)]
    for person, item in cases:
        edited, mask, ref_color, orig_color = _fixed_edit(seed=0, person=person, item=item)
        region = edited[mask].mean(axis=0)
        closer += np.linalg.norm(region - ref_color) < np.linalg.norm(region - orig_color)
    assert closer >= len(cases) - 2, f"only {closer}/{len(cases)} edits took the reference colour"


def test_openai_backend_without_key_fails_before_anything_is_written(tiny_model, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--model", str(tiny_model), "--backend", "openai"])
    assert result.exit_code == 1 and "OPENAI_API_KEY is not set" in result.output
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.slow
def test_unreachable_server_stops_the_demo_at_annotate(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--model", str(tiny_model), "--backend", "openai", "--persons", "1",
            "--steps", "1", "--min-score", "0"]  # the untrained model's edits pass, so annotate has work to ask for
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "cannot connect to the server" in result.output
    assert "--backend offline" in result.output
    assert "--use-base-description" not in result.output and "Traceback" not in result.output
    assert (out / "edits" / "edits.jsonl").is_file()  # the edits stay
