"""The toy world: determinism, exact parsing maps that agree with the captions, splits, sizes."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dp_cli.data.attributes import ATTRIBUTE_TYPES, attribute_mask, find_nouns
from dp_cli.data.formats.native import load_native
from dp_cli.errors import ConfigError, DataError
from dp_cli.toy.palette import COLORS, nearest_color
from dp_cli.toy.spec import Attribute, PersonSpec, View
from dp_cli.toy.world import generate_world, person_plan, render_person


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tiny_world, tiny_args, tmp_path):
    again = tmp_path / "again"
    generate_world(again, **tiny_args)
    first, second = _files(tiny_world), _files(again)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging folder left behind"


def test_different_seed_gives_different_world(tiny_world, tiny_args, tmp_path):
    other = tmp_path / "other"
    generate_world(other, **{**tiny_args, "seed": tiny_args["seed"] + 1})
    a, b = _files(tiny_world), _files(other)
    assert a["annotations.jsonl"] != b["annotations.jsonl"]
    images = [k for k in a if k.startswith("images/")]
    assert sum(a[k] != b[k] for k in images) == len(images)


def test_sizes_modes_and_label_ids(tiny_world, tiny_args):
    ds = load_native(tiny_world)
    assert len(ds.records) == tiny_args["persons"] * tiny_args["images_per_person"]
    for rec in ds.records:
        image = Image.open(ds.image_path(rec))
        parsing = Image.open(ds.parsing_path(rec))
        assert (image.mode, image.size) == ("RGB", (tiny_args["width"], tiny_args["height"]))
        assert (parsing.mode, parsing.size) == ("L", image.size)
        labels = np.asarray(parsing)
        assert labels.max() < 18 and (labels == 0).any() and (labels > 0).sum() > 50
        assert 1 <= len(rec.captions) <= 2


def _check_record(ds, rec):
    labels = np.asarray(Image.open(ds.parsing_path(rec)))
    truth = rec.extra["toy"]["attributes"]
    for caption in rec.captions:
        matches = find_nouns(caption)
        named = {m.type for m in matches}
        assert named == set(truth), (caption, sorted(truth))
        for m in matches:
            assert attribute_mask(labels, m.type).any(), f"{m.noun!r} in {caption!r} has no pixels"
            colors = [w for w in caption[m.phrase_start:m.end].split() if w in COLORS]
            if m.noun not in ("ponytail", "bun"):
                assert colors and colors[0] == truth[m.type]["color_name"], (caption, truth[m.type])
    for t, attr in truth.items():
        assert attr["color"] == list(COLORS[attr["color_name"]])
        assert attr["noun"] in ATTRIBUTE_TYPES[t].nouns and attr["label"].endswith(attr["noun"])
        assert attr["pattern"] in ("plain", "stripes", "checks", "dots")


@pytest.mark.parametrize("world", ["tiny_world", "medium_world"])
def test_captions_name_exactly_the_drawn_attributes_in_their_colours(world, request):
    ds = load_native(request.getfixturevalue(world))
    for rec in ds.records:
        _check_record(ds, rec)


def test_medium_world_covers_every_noun_kind(medium_world):
    ds = load_native(medium_world)
    nouns = {a["noun"] for r in ds.records for a in r.extra["toy"]["attributes"].values()}
    patterns = {a["pattern"] for r in ds.records for a in r.extra["toy"]["attributes"].values()}
    assert {"t-shirt", "skirt", "jeans", "sneakers", "hair"} <= nouns
    assert {"plain", "stripes"} <= patterns
    assert len({r.extra["toy"]["background"] for r in ds.records}) == 3


def _interior(mask):
    """Pixels whose four neighbours are in the mask too (outlines are darkened on purpose)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def test_plain_garment_pixels_show_their_named_colour(medium_world):
    ds = load_native(medium_world)
    checked = 0
    for rec in ds.records:
        labels = np.asarray(Image.open(ds.parsing_path(rec)))
        rgb = np.asarray(Image.open(ds.image_path(rec))).astype(float)
        for t, attr in rec.extra["toy"]["attributes"].items():
            mask = _interior(attribute_mask(labels, t))
            if attr["pattern"] != "plain" or t == "hair" or mask.sum() < 20:
                continue
            assert nearest_color(np.median(rgb[mask], axis=0)) == attr["color_name"], (rec.id, t, attr)
            checked += 1
    assert checked > 50


def test_split_is_by_person(tiny_world, medium_world):
    for root, persons, fraction in ((tiny_world, 6, 0.34), (medium_world, 30, 0.2)):
        ds = load_native(root)
        train = {r.person_id for r in ds.split("train")}
        test = {r.person_id for r in ds.split("test")}
        assert not train & test
        assert train | test == set(range(persons))
        assert len(test) == round(persons * fraction)
        for pid in train | test:
            recs = [r for r in ds.records if r.person_id == pid]
            assert len({json.dumps(r.extra["toy"]["pose"]) for r in recs}) == len(recs)  # views differ


def test_same_clothes_across_a_persons_images():
    plan = person_plan(seed=5, person_id=2, images=4)
    labels = [render_person(plan.spec, v, 128, 64)[1] for v in plan.views]
    assert len({v.noise_seed for v in plan.views}) == 4
    assert not all(np.array_equal(labels[0], other) for other in labels[1:])


def _spec(**attrs):
    base = {"hair": Attribute("hair", "hair", "black", style="long"),
            "uppercloth": Attribute("uppercloth", "t-shirt", "red"),
            "bottomcloth": Attribute("bottomcloth", "jeans", "blue"),
            "shoes": Attribute("shoes", "sneakers", "white")}
    base.update(attrs)
    return PersonSpec(0, "woman", (230, 190, 150), {k: v for k, v in base.items() if v is not None})


def test_render_person_labels_follow_the_spec():
    image, labels = render_person(_spec(), View(), 256, 128)
    assert image.size == (128, 256) and labels.shape == (256, 128) and labels.dtype == np.uint8
    present = set(np.unique(labels).tolist())
    assert {2, 4, 6, 9, 10, 11, 14, 15} <= present and not present & {1, 5, 16}
    ys, xs = np.nonzero(labels == 9)
    ys2, xs2 = np.nonzero(labels == 10)
    assert xs.mean() > xs2.mean(), "left shoe is the person's left, the image's right"
    _, with_extras = render_person(_spec(hat=Attribute("hat", "cap", "green"), bag=Attribute("bag", "backpack", "gray"),
                                         bottomcloth=Attribute("bottomcloth", "skirt", "pink", style="knee")), View(), 256, 128)
    assert {1, 5, 16, 12, 13} <= set(np.unique(with_extras).tolist()) and 6 not in with_extras
    rgb = np.asarray(image)
    assert np.abs(rgb[labels == 4].astype(float).mean(0) - COLORS["red"]).max() < 30


def test_render_person_is_deterministic_and_view_dependent():
    a = render_person(_spec(), View(noise_seed=1), 64, 32)
    b = render_person(_spec(), View(noise_seed=1), 64, 32)
    c = render_person(_spec(), View(noise_seed=1, dx=0.8, stride=0.05), 64, 32)
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_bad_arguments_are_reported_together(tmp_path):
    with pytest.raises(ConfigError) as err:
        generate_world(tmp_path / "w", persons=0, height=0, test_fraction=1.5)
    text = str(err.value)
    assert "persons must be at least 1 (got 0)" in text and "0x128" in text and "1.5" in text
    assert not (tmp_path / "w").exists()


def test_non_empty_target_is_refused_and_kept(tiny_args, tmp_path):
    target = tmp_path / "w"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        generate_world(target, **tiny_args)
    assert (target / "keep.txt").read_text() == "mine"
    with pytest.raises(DataError, match="holds no toy world"):
        generate_world(target, **tiny_args, overwrite=True)
    assert (target / "keep.txt").read_text() == "mine"
    (target / "keep.txt").unlink()
    generate_world(target, **tiny_args)
    generate_world(target, **tiny_args, overwrite=True)
    assert (target / "annotations.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["w"]


def test_plan_for_record_redraws_the_stored_image_and_parsing(tiny_world):
    from dp_cli.toy.world import plan_for_record

    ds = load_native(tiny_world)
    for rec in ds.records[:4]:
        spec, view = plan_for_record(ds, rec)
        image, labels = render_person(spec, view, 64, 32)
        assert image.tobytes() == Image.open(ds.image_path(rec)).tobytes()
        assert np.array_equal(labels, np.asarray(Image.open(ds.parsing_path(rec))))
        for t, truth in rec.extra["toy"]["attributes"].items():
            assert Attribute.from_truth(t, truth) == spec.attributes[t]


def test_with_attribute_changes_only_that_attribute(tiny_world):
    from dp_cli.toy.world import plan_for_record

    ds = load_native(tiny_world)
    rec = ds.records[0]
    spec, view = plan_for_record(ds, rec)
    catalog = [json.loads(line) for line in (tiny_world / "catalog" / "catalog.jsonl").read_text().splitlines()]
    entry = next(e for e in catalog if e["type"] == "uppercloth")
    edited = spec.with_attribute(Attribute.from_truth("uppercloth", entry))
    assert edited.attributes["uppercloth"].label == entry["label"] and edited.attributes["hair"] == spec.attributes["hair"]
    before, labels_before = render_person(spec, view, 128, 64)
    after, labels_after = render_person(edited, view, 128, 64)
    keep = ~attribute_mask(labels_before, "uppercloth") & ~attribute_mask(labels_after, "uppercloth")
    assert np.array_equal(np.asarray(before)[keep], np.asarray(after)[keep])


def test_outputs_get_the_usual_file_modes(tiny_world):
    import os

    mask = os.umask(0)
    os.umask(mask)
    for name in ("annotations.jsonl", "dataset.json", "catalog/catalog.jsonl", "images"):
        mode = (tiny_world / name).stat().st_mode & 0o777
        assert mode == ((0o777 if name == "images" else 0o666) & ~mask), (name, oct(mode))
    assert (tiny_world.stat().st_mode & 0o777) == 0o777 & ~mask


def test_captions_vary_and_read_like_sentences(medium_world):
    ds = load_native(medium_world)
    captions = [c for r in ds.records for c in r.captions]
    assert all(c[0].isupper() and c.endswith(".") and "  " not in c for c in captions)
    assert len({" ".join(c.split()[:3]) for c in captions}) >= 6
    nouns = {m.noun for c in captions for m in find_nouns(c)}
    assert {"hair", "t-shirt", "jeans"} <= nouns and nouns & {"backpack", "handbag", "bag"} and nouns & {"hat", "cap", "beanie"}
    two = [r for r in ds.records if len(r.captions) == 2]
    assert two and all(r.captions[0] != r.captions[1] for r in two)


def test_same_bytes_in_another_process_with_another_hash_seed(tiny_world, tiny_args, tmp_path, subprocess_env):
    import subprocess
    import sys

    other = tmp_path / "other-process"
    code = f"from pathlib import Path; from dp_cli.toy.world import generate_world; generate_world(Path({str(other)!r}), **{tiny_args!r})"
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env(PYTHONHASHSEED="12345"))
    assert _files(other) == _files(tiny_world)
