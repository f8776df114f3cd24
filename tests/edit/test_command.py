"""`dp edit` end to end with a tiny model on the toy world: dataset mode, one-image mode, bad inputs."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dp_cli import docs_build
from dp_cli.app import app
from dp_cli.config import ProjectFile, resolve_section
from dp_cli.edit.config import EditConfig

REPO = Path(__file__).resolve().parents[2]
FAST = ["--steps", "2", "--mask-dilation", "1", "--feather", "1"]
ROW_KEYS = {"id", "image", "mask", "source_id", "source_image", "source_dataset", "person_id", "variant", "split",
            "base_description", "prompt", "reference_attribute_list", "seed", "model", "settings",
            "verify", "status", "candidates"}


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def dataset_args(model_dir, world, out, *extra):
    return ["edit", "--model", model_dir, "--dataset", world, "--catalog", world / "catalog", "--output-dir", out,
            "--batch-size", "4", "--persons", "1", "--attributes-per-variant", "2", *FAST, *extra]


@pytest.fixture(scope="module")
def edited(model_dir, world, tmp_path_factory):
    out = tmp_path_factory.mktemp("edit-cli") / "out"
    res = invoke(dataset_args(model_dir, world, out, "--contact-sheet"))
    assert res.exit_code == 0, res.output
    return out


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "edits.jsonl").read_text().splitlines()]


def test_dataset_mode_writes_images_masks_and_the_manifest(edited, world):
    rows = rows_of(edited)
    assert rows and len({r["id"] for r in rows}) == len(rows)
    for row in rows:
        assert set(row) == ROW_KEYS
        src = Image.open(row["source_image"])
        assert Image.open(edited / row["image"]).size == src.size
        mask = np.asarray(Image.open(edited / row["mask"]))
        assert mask.shape == (src.height, src.width) and set(np.unique(mask)) <= {0, 255}
        assert np.array_equal(np.asarray(Image.open(edited / row["image"]))[mask == 0],
                              np.asarray(src.convert("RGB"))[mask == 0])
        assert row["variant"].startswith(f"{row['person_id']}__v") and row["split"] == "train"
        assert row["source_dataset"] == str(world.resolve())
        for ref in row["reference_attribute_list"]:
            assert {"type", "label", "image", "replaced", "added_phrase", "color"} <= set(ref)
            assert Path(ref["image"]).is_absolute() and Path(ref["image"]).is_file()
            noun_in_prompt = ref["label"].split()[-1] in row["prompt"]
            assert noun_in_prompt or ref["added_phrase"] is False
        assert row["settings"]["steps"] == 2 and row["settings"]["scheduler"] == "ddim"
        assert row["settings"]["reference_scale"] == 1.5  # the default, recorded
    assert (edited / "contact_sheet.png").is_file()


def test_a_dataset_edit_encodes_each_distinct_reference_once(model_dir, world, tmp_path, monkeypatch):
    """One image per pipeline call: the references of a variant are encoded for its first image only."""
    from dp_cli.edit.runner import prepare_dataset_edit, run_dataset_edit

    cfg = EditConfig(model=str(model_dir), dataset=world, catalog=world / "catalog", output_dir=tmp_path / "out",
                     batch_size=1, variants_per_person=2, steps=1, mask_dilation=1, feather=1)
    prepared = prepare_dataset_edit(cfg)
    enc = prepared.pipe.model.image_encoder
    encoded, forward = [], enc.forward
    monkeypatch.setattr(enc, "forward", lambda pix, valid=None: encoded.append(pix.shape[:2].numel())
                        or forward(pix, valid))
    summary = run_dataset_edit(cfg, prepared=prepared)
    distinct = {(r.image, r.mask) for j in prepared.jobs for r in j.references}
    per_job = sum(len(j.references) for j in prepared.jobs)
    assert summary.written == len(prepared.jobs) > len(encoded) and per_job > len(distinct)
    assert sum(encoded) == len(distinct)


def test_rerun_skips_finished_images(edited, model_dir, world):
    before = digest(edited)
    res = invoke(["--json", *dataset_args(model_dir, world, edited)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["written"] == 0 and summary["already_done"] == summary["planned"]
    assert summary["kept_with_other_settings"] == 0
    assert all(" " not in key for key in summary) and summary["manifest"].endswith("edits.jsonl")  # plain values
    assert set(summary["status"]) >= {"passed", "failed"} and isinstance(summary["min_score"], float)
    assert digest(edited) == before


def test_rerun_with_other_settings_keeps_the_images_and_says_so(edited, model_dir, world):
    before = digest(edited)
    args = dataset_args(model_dir, world, edited)
    args[args.index("--steps") + 1] = "3"
    res = invoke(["--json", *args])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["written"] == 0 and summary["kept_with_other_settings"] == summary["planned"] > 0
    assert "use a new --output-dir" in res.stderr
    assert digest(edited) == before


def test_one_image_mode(model_dir, world, tmp_path):
    from dp_cli.data.formats.native import load_native

    rec = next(r for r in load_native(world).split("train")
               if (np.asarray(Image.open(world / r.parsing)) == 2).any())
    out = tmp_path / "edited.png"
    res = invoke(["--json", "edit", "--model", model_dir, "--image", world / rec.image, "--parsing", world / rec.parsing,
                  "--caption", rec.captions[0], "--attribute", f"hair={world / 'catalog/images/hair_000.png'}",
                  "--attribute", f"bag={world / 'catalog/images/bag_000.png'}:red backpack", "--out", out, *FAST])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert Image.open(out).size == Image.open(world / rec.image).size
    assert [r["type"] for r in payload["references"]] == ["hair", "bag"]
    assert payload["references"][1]["added_phrase"] is True and "red backpack" in payload["prompt"]
    res = invoke(["--json", "edit", "--model", model_dir, "--image", world / rec.image, "--parsing", world / rec.parsing,
                  "--caption", rec.captions[0], "--attribute", f"hair={world / 'catalog/images/hair_000.png'}:pink hair",
                  "--label-in-prompt", "--out", tmp_path / "labelled.png", *FAST])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert "pink hair" in payload["prompt"] and payload["references"][0]["replaced"] not in payload["prompt"]


def test_one_image_mode_with_a_mask_file_candidates_and_the_verdict(model_dir, world, tmp_path):
    from dp_cli.data.formats.native import load_native
    from dp_cli.edit.single import parse_attribute

    rec = next(r for r in load_native(world).split("train")
               if (np.asarray(Image.open(world / r.parsing)) == 4).any())
    ref = world / "catalog/images/uppercloth_000.png"
    mask = np.zeros((Image.open(ref).height, Image.open(ref).width), np.uint8)
    mask[4:20, 6:18] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    spec = parse_attribute(f"uppercloth={ref}@{tmp_path / 'm.png'}:white coat")
    assert (spec.image, spec.mask, spec.label) == (ref, tmp_path / "m.png", "white coat")
    out = tmp_path / "e.png"
    res = invoke(["--json", "edit", "--model", model_dir, "--image", world / rec.image, "--parsing", world / rec.parsing,
                  "--caption", rec.captions[0], "--attribute", f"uppercloth={ref}@{tmp_path / 'm.png'}:white coat",
                  "--candidates", "2", "--out", out, *FAST])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    prep = payload["references"][0]["preparation"]
    assert prep["method"] == "mask" and prep["crop"] == [12, 16]
    assert 0.0 <= payload["verify"]["score"] <= 1.0 and isinstance(payload["verify"]["passed"], bool)
    from dp_cli.edit.runner import candidate_seed

    assert payload["seed"] in (candidate_seed(0, 0), candidate_seed(0, 1))


def test_dataset_and_catalog_from_the_shared_data_table(model_dir, world, tmp_path):
    toml = tmp_path / "dp.toml"
    toml.write_text(f'[data]\ndataset = "{world}"\ncatalog = "{world / "catalog"}"\n')
    out = tmp_path / "out"
    res = invoke(["-c", toml, "-q", "edit", "--model", model_dir, "--output-dir", out, "--persons", "1",
                  "--variants-per-person", "1", *FAST])
    assert res.exit_code == 0, res.output
    assert rows_of(out) and all(r["source_dataset"] == str(world) for r in rows_of(out))
    (tmp_path / "empty.toml").write_text("")
    res = invoke(["-c", tmp_path / "empty.toml", "edit", "--model", model_dir, "--output-dir", out])
    assert res.exit_code == 2 and "dataset mode needs a dataset and catalog" in res.output


def test_toml_fragment_loads_and_documents_every_key():
    text = docs_build.table_toml("edit")
    documented = set(re.findall(r"^#? ?(\w+) = ", text, re.M))
    assert documented == set(EditConfig.model_fields)
    cfg = resolve_section(EditConfig, "edit", ProjectFile(REPO / "dp.toml", tomllib.loads(text)))
    assert cfg == EditConfig()


def one_line_error(res, *needles, code=1):
    assert res.exit_code == code, res.output
    err = res.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in res.output, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def broken(edited, world, tmp_path):
    """A copy of the finished output (to check nothing is lost) and a copy of the world to break."""
    out = tmp_path / "out"
    shutil.copytree(edited, out)
    w = tmp_path / "world"
    shutil.copytree(world, w)
    return out, w


def test_missing_or_corrupt_reference_image(broken, model_dir):
    out, w = broken
    before = digest(out)
    for item in (w / "catalog/images").glob("hair_*.png"):
        item.write_bytes(b"not a png")
    one_line_error(invoke(dataset_args(model_dir, w, out, "--types", "hair", "--attributes-per-variant", "1")),
                   "reference image", "hair_00", "cannot be read")
    for item in (w / "catalog/images").glob("hair_*.png"):
        item.unlink()
    one_line_error(invoke(dataset_args(model_dir, w, out, "--types", "hair", "--attributes-per-variant", "1")),
                   "not found")
    assert digest(out) == before


def test_parsing_map_of_another_size(broken, model_dir):
    out, w = broken
    before = digest(out)
    for p in (w / "parsing").glob("*.png"):
        Image.open(p).resize((16, 16)).save(p)
    one_line_error(invoke(dataset_args(model_dir, w, out)), "parsing map", "16x16", "32x64")
    assert digest(out) == before


def test_parsing_label_outside_the_label_set(broken, model_dir):
    out, w = broken
    before = digest(out)
    for path in (w / "parsing").glob("*.png"):
        arr = np.asarray(Image.open(path)).copy()
        arr[0, 0] = 255  # an 'ignore' id some parsers write
        Image.fromarray(arr).save(path)
    one_line_error(invoke(dataset_args(model_dir, w, out)), "255", "outside the atr label set")
    assert digest(out) == before


def test_unknown_type_incomplete_model_and_catalog_without_type(broken, model_dir, tmp_path):
    out, w = broken
    before = digest(out)
    one_line_error(invoke(dataset_args(model_dir, w, out, "--types", "wings")), "unknown attribute type",
                   code=2)  # a bad flag value is a usage error
    incomplete = tmp_path / "model"
    shutil.copytree(model_dir, incomplete)
    shutil.rmtree(incomplete / "fusion")
    one_line_error(invoke(dataset_args(incomplete, w, out)), "incomplete", "fusion")
    one_line_error(invoke(dataset_args(model_dir, w, out, "--types", "dress", "--attributes-per-variant", "1")),
                   "catalog has no reference", "dress")
    assert digest(out) == before


def test_one_image_bad_inputs(model_dir, world, tmp_path, monkeypatch):
    img, parsing = world / "images/p00000_0.png", world / "parsing/p00000_0.png"
    out = tmp_path / "edited.png"
    out.write_bytes(b"keep me")
    base = ["edit", "--model", model_dir, "--image", img, "--parsing", parsing, "--caption", "A man with hair.",
            "--out", out, *FAST]
    one_line_error(invoke(base + ["--attribute", "wings=x.png"]), "unknown attribute type 'wings'", code=2)
    one_line_error(invoke(base + ["--attribute", "x.png"]), "expected TYPE=IMAGE", code=2)
    one_line_error(invoke(base + ["--attribute", f"hair={tmp_path / 'nope.png'}"]), "nope.png", "not found")
    small = tmp_path / "small.png"
    Image.open(parsing).resize((8, 8)).save(small)
    one_line_error(invoke(["edit", "--model", model_dir, "--image", img, "--parsing", small, "--caption", "A man.",
                           "--attribute", f"hair={world / 'catalog/images/hair_000.png'}", "--out", out]),
                   "8x8", "32x64")
    assert out.read_bytes() == b"keep me"
    folder = tmp_path / "a-folder"
    folder.mkdir()
    one_line_error(invoke([*base[:base.index("--out")], "--out", folder, *FAST,
                           "--attribute", f"hair={world / 'catalog/images/hair_000.png'}"]), "is a folder")
    assert not list(folder.iterdir()) and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr("dp_cli.edit.runner.TOY_MODEL", tmp_path / "no-toy-model")
    one_line_error(invoke([a for a in base if a not in ("--model", model_dir)]
                          + ["--attribute", f"hair={world / 'catalog/images/hair_000.png'}"]), "--model")
    res = invoke(["edit", "--image", img, "--out", out])
    assert res.exit_code == 2 and "--parsing" in res.output


def test_a_folder_dp_edit_did_not_write_is_refused_before_anything_is_written(model_dir, world, tmp_path):
    other = tmp_path / "other"
    (other / "images").mkdir(parents=True)
    (other / "notes.txt").write_text("keep")
    (other / "images" / "p00004_0__v0.png").write_bytes(b"mine")
    before = digest(other)
    res = invoke(dataset_args(model_dir, world, other))
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "folder is not empty and holds no edits.jsonl" in " ".join(res.stderr.split())
    assert digest(other) == before
    (tmp_path / "empty").mkdir()  # an empty folder, as `mkdir` leaves it, is fine
    assert invoke(dataset_args(model_dir, world, tmp_path / "empty")).exit_code == 0


def test_outputs_may_not_land_in_or_on_the_inputs(model_dir, world, tmp_path):
    from dp_cli.data.formats.native import load_native

    before = sorted(p.name for p in world.iterdir())
    res = invoke(dataset_args(model_dir, world, world))
    assert res.exit_code == 2 and "--output-dir" in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in world.iterdir()) == before  # nothing written into the source dataset
    rec = load_native(world).split("train")[0]
    image = tmp_path / "p.png"
    image.write_bytes((world / rec.image).read_bytes())
    res = invoke(["edit", "--model", model_dir, "--image", image, "--parsing", world / rec.parsing,
                  "--caption", rec.captions[0], "--attribute", f"hair={world / 'catalog/images/hair_000.png'}",
                  "--out", image, *FAST])
    assert res.exit_code == 2 and "--out" in res.output
    assert image.read_bytes() == (world / rec.image).read_bytes()


def test_rows_written_before_a_setting_existed_count_as_its_default(edited, model_dir, world):
    from dp_cli.fsutil import write_jsonl_atomic

    manifest = edited / "edits.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        del row["settings"]["retries"]  # as an older release wrote them
    write_jsonl_atomic(manifest, rows)
    res = invoke(["--json", *dataset_args(model_dir, world, edited)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["written"] == 0 and summary["kept_with_other_settings"] == 0


def test_more_persons_than_the_split_has_is_said(model_dir, world, tmp_path):
    res = invoke([*dataset_args(model_dir, world, tmp_path / "out"), "--persons", "999"])
    assert res.exit_code == 0, res.output
    assert "--persons 999: split 'train' has" in " ".join(res.stderr.split())


def test_edits_of_test_persons_say_so_and_are_not_exported_into_training(model_dir, world, tmp_path):
    out = tmp_path / "test-edits"
    res = invoke(dataset_args(model_dir, world, out, "--split", "test"))
    assert res.exit_code == 0, res.output
    rows = rows_of(out)
    assert rows and {r["split"] for r in rows} == {"test"}
    res = invoke(["export", "-d", world, "--edits", out / "edits.jsonl", "--use-base-description",
                  "--include-failed-edits", "-f", "native", "-o", tmp_path / "export"])  # passed or not
    assert res.exit_code == 1 and "a test record" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "export").exists()


def test_reference_names_with_at_signs_and_colons_parse(tmp_path, monkeypatch):
    from dp_cli.edit.single import parse_attribute

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "shirt@2x.png")
    spec = parse_attribute("uppercloth=shirt@2x.png")  # a file of that name: not IMAGE@MASK
    assert (spec.image, spec.mask) == (Path("shirt@2x.png"), None)
    spec = parse_attribute("uppercloth=shirt@2x.png:red: a shirt")  # the label may hold colons
    assert (spec.image, spec.label) == (Path("shirt@2x.png"), "red: a shirt")
    spec = parse_attribute("uppercloth=other.png:a:b")
    assert (spec.image, spec.label) == (Path("other.png"), "a:b")


def test_unusable_references_and_outputs_are_refused_and_16_bit_ones_read(model_dir, world, tmp_path):
    img, parsing = world / "images/p00000_0.png", world / "parsing/p00000_0.png"
    base = ["edit", "--model", model_dir, "--image", img, "--parsing", parsing, "--caption", "A man in a shirt.",
            *FAST]
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (50, 50), (255, 0, 0, 0)).save(clear)  # red, but every pixel invisible
    one_line_error(invoke(base + ["-a", f"uppercloth={clear}", "--out", tmp_path / "o.png"]), "clear.png",
                   "only 0 pixel(s) are opaque")
    assert not (tmp_path / "o.png").exists()
    one_line_error(invoke(base + ["-a", f"uppercloth={world / 'catalog/images/uppercloth_000.png'}",
                                  "--out", tmp_path / "o.xyz"]), ".xyz is not an image type", code=2)
    one_line_error(invoke(base + ["-a", f"uppercloth={world / 'catalog/images/uppercloth_000.png'}",
                                  "--out", tmp_path / "o.blp"]), ".blp is not an image type", code=2)  # PIL: no RGB
    grey16 = np.full((40, 40), 60000, np.uint16)  # nearly white in 16 bits ...
    grey16[8:32, 8:32] = 20000  # ... around a dark grey garment
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    from dp_cli.data.images import load_rgb

    assert np.asarray(load_rgb(tmp_path / "g16.png"))[20, 20].tolist() == [78, 78, 78]  # 20000 / 257, not 255
    Image.fromarray(np.full((4, 4), 200, np.uint16)).save(tmp_path / "dark16.png")  # 16-bit, all values <= 255
    assert np.asarray(load_rgb(tmp_path / "dark16.png"))[0, 0].tolist() == [1, 1, 1]  # nearly black, not 200
    res = invoke(base + ["-a", f"uppercloth={tmp_path / 'g16.png'}", "--out", tmp_path / "o.webp"])
    assert res.exit_code == 0, res.output
    assert "no foreground found" not in res.output  # the garment was found against its background
    assert Image.open(tmp_path / "o.webp").format == "WEBP"
