"""Edit quality: PSNR/SSIM on crafted images, colour fidelity with known truth, CLIP scores, CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.errors import DataError
from dp_cli.eval.edits import evaluate_edits, gaussian_filter, grow_mask, psnr, ssim


def test_psnr_and_ssim_basics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (24, 20, 3)).astype(np.uint8)
    assert psnr(a, a) is None  # identical: infinite PSNR reported as None
    assert ssim(a, a) == 1.0
    noisy = np.clip(a.astype(int) + rng.integers(-10, 11, a.shape), 0, 255).astype(np.uint8)
    more = np.clip(a.astype(int) + rng.integers(-60, 61, a.shape), 0, 255).astype(np.uint8)
    assert 25 < psnr(a, noisy) < 40 and psnr(a, more) < psnr(a, noisy)
    assert ssim(a, more) < ssim(a, noisy) < 1.0
    b = a.copy()
    b[:5] = 0  # differences only inside the top rows
    outside = np.ones(a.shape[:2], bool)
    outside[:5] = False
    assert psnr(a, b, outside) is None


def test_gaussian_filter_matches_direct_convolution_inside():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 30))
    r = int(3.5 * 1.5 + 0.5)
    t = np.arange(-r, r + 1)
    k = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * 1.5 ** 2))
    k /= k.sum()
    direct = (x[15 - r: 15 + r + 1, 12 - r: 12 + r + 1] * k).sum()
    assert gaussian_filter(x, 1.5)[15, 12] == pytest.approx(direct)


def test_grow_mask_grows_by_pixels():
    m = np.zeros((9, 9), bool)
    m[4, 4] = True
    assert grow_mask(m, 2).sum() == 25 and grow_mask(m, 0).sum() == 1


def test_identity_and_colour_fidelity_on_known_truth(dataset, tmp_path, kit):
    out = tmp_path / "edits"
    rows = [kit.write_edit(out, dataset, "p0_0", 0, None, "blue"),  # identity edit (source upper is red)
            kit.write_edit(out, dataset, "p0_1", 1, kit.COLORS["blue"], "blue"),  # painted the reference colour
            kit.write_edit(out, dataset, "p0_0", 2, (200, 40, 40), "blue"),  # wrong colour: near the original red
            kit.write_edit(out, dataset, "p1_0", 3, kit.COLORS["blue"], "blue")]  # reference == original: not counted
    q = evaluate_edits(kit.write_jsonl(out / "edits.jsonl", rows), dilate=1)
    by_id = {e.id: e for e in q.edits}
    ident, good, wrong = by_id["p0_0__v0"], by_id["p0_1__v1"], by_id["p0_0__v2"]
    assert ident.psnr is None and ident.ssim == 1.0
    assert q.identical_outside_mask == 4 and q.psnr_mean is None  # edits only touched the mask
    assert good.attributes[0].closer_to_reference is True
    assert good.attributes[0].distance_to_reference == pytest.approx(0.0)
    assert wrong.attributes[0].closer_to_reference is False
    assert wrong.attributes[0].distance_to_reference > good.attributes[0].distance_to_reference
    assert by_id["p1_0__v3"].attributes[0].closer_to_reference is None
    assert (q.attributes_with_truth, q.attributes_color_differs, q.closer_to_reference) == (4, 3, 1)
    assert q.share_closer_to_reference == pytest.approx(1 / 3)


def test_changes_outside_mask_lower_preservation(dataset, tmp_path, kit):
    from PIL import Image

    out = tmp_path / "edits"
    row = kit.write_edit(out, dataset, "p2_0", 0, kit.COLORS["red"], "red")
    img = np.asarray(Image.open(out / row["image"])).copy()
    img[28:, :] = 255 - img[28:, :]  # damage the legs, far outside the mask
    Image.fromarray(img).save(out / row["image"])
    q = evaluate_edits(kit.write_jsonl(out / "edits.jsonl", [row]), dilate=3)
    assert q.psnr_mean is not None and q.psnr_mean < 20 and q.ssim_mean < 0.95
    assert q.identical_outside_mask == 0


def test_edit_whose_mask_covers_the_image_is_counted_not_measured(dataset, tmp_path, kit):
    from PIL import Image

    out = tmp_path / "edits"
    rows = [kit.write_edit(out, dataset, "p2_0", 0, kit.COLORS["red"], "red"),
            kit.write_edit(out, dataset, "p2_1", 1, kit.COLORS["red"], "red")]
    mask = Image.open(out / rows[1]["mask"])
    Image.new("L", mask.size, 255).save(out / rows[1]["mask"])  # edited everywhere: nothing outside
    q = evaluate_edits(kit.write_jsonl(out / "edits.jsonl", rows), dilate=1)
    assert (q.num_edits, q.identical_outside_mask, q.mask_covers_image) == (2, 1, 1)
    assert ("mask covers the whole image", 1) in q.summary_rows()


def test_clip_scores_with_tiny_model(dataset, tmp_path, tiny_clip, kit):
    from dp_cli.eval.embeddings import load_clip

    out = tmp_path / "edits"
    rows = [kit.write_edit(out, dataset, "p0_0", 0, kit.COLORS["blue"], "blue"),
            kit.write_edit(out, dataset, "p3_0", 1, kit.COLORS["white"], "white"),
            kit.write_edit(out, dataset, "p1_0", 2, kit.COLORS["red"], "white")]
    q = evaluate_edits(kit.write_jsonl(out / "edits.jsonl", rows), clip=load_clip(str(tiny_clip), "cpu"),
                       descriptions={"p0_0__v0": "A person wearing a blue t-shirt."})
    for e in q.edits:
        assert -1 <= e.attributes[0].clip_similarity <= 1
        assert 0 <= e.clip_score <= 100 and 0 <= e.clip_score_base <= 100
    assert q.clip_score_mean is not None and q.clip_image_similarity_mean is not None
    sims = [e.attributes[0].clip_similarity for e in q.edits]
    assert sims[0] == pytest.approx(1.0, abs=1e-5)  # uniform blue region vs uniform blue reference
    assert sims[2] < sims[1]  # a red region scores worse against a white reference than a white one


def test_manifest_errors_name_the_line(tmp_path, dataset, kit):
    path = kit.write_jsonl(tmp_path / "edits.jsonl", [{"id": "x", "image": "a.png"}])
    with pytest.raises(DataError, match=r"edits.jsonl:1: missing field\(s\) mask"):
        evaluate_edits(path)
    row = kit.write_edit(tmp_path / "e", dataset, "p0_0", 0, None, "blue")
    row["image"] = "images/nope.png"
    with pytest.raises(DataError, match=r"edits.jsonl:1: cannot read image"):
        evaluate_edits(kit.write_jsonl(tmp_path / "e" / "edits.jsonl", [row]))


def test_sources_that_cannot_be_read_are_said_not_silently_dropped(dataset, tmp_path, kit):
    out = tmp_path / "edits"
    rows = [kit.write_edit(out, dataset, "p0_0", 0, kit.COLORS["blue"], "blue"),
            kit.write_edit(out, dataset, "p0_1", 1, kit.COLORS["blue"], "blue")]
    manifest = kit.write_jsonl(out / "edits.jsonl", rows)
    assert evaluate_edits(manifest).notes == []
    (dataset / "images" / "p0_1_parsing.png").unlink()
    res = CliRunner().invoke(app, ["eval", "edits", str(manifest)])
    assert res.exit_code == 0, res.output
    assert "1 source parsing map(s) missing (e.g." in " ".join(res.output.split())
    (dataset / "annotations.jsonl").unlink()
    q = evaluate_edits(manifest)
    assert q.attributes_with_truth == 0
    assert len(q.notes) == 1 and q.notes[0].startswith(f"2 edit(s) measured without their source dataset {dataset}")


def test_cli_edits_json_and_bad_manifest(dataset, tmp_path, kit):
    out = tmp_path / "edits"
    rows = [kit.write_edit(out, dataset, "p0_0", 0, kit.COLORS["blue"], "blue")]
    manifest = kit.write_jsonl(out / "edits.jsonl", rows)
    res = CliRunner().invoke(app, ["--json", "eval", "edits", str(manifest)])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["num_edits"] == 1 and payload["closer_to_reference"] == 1
    assert payload["edits"][0]["psnr"] is None
    (out / "bad.jsonl").write_text('{"id": 1}\nnot json\n')
    res = CliRunner().invoke(app, ["eval", "edits", str(out / "bad.jsonl")])
    assert res.exit_code == 1 and "bad.jsonl:2: malformed JSON" in res.output and "Traceback" not in res.output


def test_toy_world_edits_with_known_truth(tmp_path):
    """On the toy world: painting the catalog colour is faithful, an untouched region is not."""
    from PIL import Image

    from dp_cli.data.attributes import attribute_mask
    from dp_cli.fsutil import read_jsonl
    from dp_cli.toy.world import generate_world

    ds = generate_world(tmp_path / "toy", persons=3, height=64, width=32, images_per_person=1, catalog_per_type=2)
    catalog = [row for _, row in read_jsonl(tmp_path / "toy" / "catalog" / "catalog.jsonl")
               if row["type"] == "uppercloth"]
    out, rows = tmp_path / "edits", []
    for k, rec in enumerate(ds.records):
        ref = next(c for c in catalog if c["color"] != rec.extra["toy"]["attributes"]["uppercloth"]["color"])
        img = np.asarray(Image.open(ds.image_path(rec)).convert("RGB")).copy()
        region = attribute_mask(np.asarray(Image.open(ds.parsing_path(rec))), "uppercloth")
        for variant, paint in ((0, True), (1, False)):
            eid = f"{rec.id}__v{variant}"
            edited = img.copy()
            if paint:
                edited[region] = ref["color"]
            (out / "images").mkdir(parents=True, exist_ok=True)
            (out / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(edited).save(out / "images" / f"{eid}.png")
            Image.fromarray((region * 255).astype(np.uint8), mode="L").save(out / "masks" / f"{eid}.png")
            rows.append({"id": eid, "image": f"images/{eid}.png", "mask": f"masks/{eid}.png", "source_id": rec.id,
                         "source_image": str(ds.image_path(rec)), "source_dataset": str(ds.root),
                         "reference_attribute_list": [{"type": "uppercloth", "label": ref["label"],
                                                       "image": str(tmp_path / "toy" / "catalog" / ref["image"]),
                                                       "replaced": None, "color": ref["color"]}]})
    q = evaluate_edits(kit_jsonl(out / "edits.jsonl", rows), dilate=2)
    verdicts = {e.id: e.attributes[0].closer_to_reference for e in q.edits}
    assert all(v is True for i, v in verdicts.items() if i.endswith("__v0"))
    assert all(v is False for i, v in verdicts.items() if i.endswith("__v1"))
    assert q.share_closer_to_reference == pytest.approx(0.5)
    assert q.identical_outside_mask == len(rows)  # nothing changed outside the masks


def kit_jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_preservation_ignores_the_dilated_mask():
    from dp_cli.eval.edits import preservation

    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)
    b = a.copy()
    b[8:12, 8:12] = 0
    mask = np.zeros((20, 20), bool)
    mask[9:11, 9:11] = True  # smaller than the change: only the dilation covers it
    assert preservation(b, a, mask, dilate=0)[0] is not None
    assert preservation(b, a, mask, dilate=1) == (None, 1.0)
    assert preservation(b, a, np.ones((20, 20), bool)) == (None, None)


def test_cli_edits_with_model_and_annotations(dataset, tmp_path, tiny_clip, kit):
    out = tmp_path / "edits"
    manifest = kit.write_jsonl(out / "edits.jsonl", [kit.write_edit(out, dataset, "p0_0", 0, kit.COLORS["blue"], "blue")])
    anns = kit.write_jsonl(out / "annotations.jsonl", [{"key": "k", "id": "p0_0__v0", "description": "A blue t-shirt."}])
    res = CliRunner().invoke(app, ["--json", "eval", "edits", str(manifest), "--model", str(tiny_clip),
                                   "--annotations", str(anns), "--dilate", "0"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    edit = payload["edits"][0]
    assert edit["clip_score"] is not None and edit["attributes"][0]["clip_similarity"] == pytest.approx(1, abs=1e-5)
    # the annotation's description, not the prompt, was scored: scoring the prompt gives another number
    res2 = CliRunner().invoke(app, ["--json", "eval", "edits", str(manifest), "--model", str(tiny_clip)])
    assert json.loads(res2.stdout)["edits"][0]["clip_score"] != edit["clip_score"]


@pytest.mark.parametrize("command,name", [("edits", "MANIFEST"), ("captions", "ANNOTATIONS")])
def test_usage_line_names_the_argument_in_capitals(command, name):
    res = CliRunner().invoke(app, ["eval", command, "-h"], env={"TERMINAL_WIDTH": "100"})
    assert res.exit_code == 0, res.output
    usage = next(line for line in res.output.splitlines() if "Usage:" in line)
    assert usage.split()[-1] == name, usage


@pytest.mark.parametrize("command,name", [("edits", "MANIFEST"), ("captions", "ANNOTATIONS")])
def test_a_missing_argument_is_named_as_the_usage_line_names_it(command, name):
    res = CliRunner().invoke(app, ["eval", command])
    assert res.exit_code == 2
    assert f"Missing argument '{name}'" in res.output, res.output
