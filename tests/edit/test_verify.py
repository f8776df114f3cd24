"""The verifier reads images only and ranks a right edit above a wrong one; best of N keeps the best."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dp_cli.data.reference import prepare_reference
from dp_cli.edit.verify import colour_distance, verify_edit
from dp_cli.toy.catalog import render_item
from dp_cli.toy.spec import Attribute

RED, BLUE, GREEN, GREY = (200, 32, 38), (38, 72, 196), (36, 140, 62), (128, 128, 132)


def _person(region_colour, stripes=None):
    """A 64x32 'person': background, a torso region painted `region_colour` (or striped)."""
    img = np.full((64, 32, 3), (90, 110, 90), np.uint8)
    region = np.zeros((64, 32), bool)
    region[20:40, 8:24] = True
    img[region] = region_colour
    if stripes is not None:
        rows = np.zeros_like(region)
        rows[20:40:4] = True
        rows[21:40:4] = True
        img[region & rows] = stripes
    return img, region


def _reference(colour, pattern="plain", second=None):
    name = "shirt" if pattern != "plain" else "t-shirt"
    return prepare_reference(render_item(Attribute("uppercloth", name, colour, pattern, second), 64))


def test_right_edit_scores_above_wrong_and_unchanged_ones():
    source, region = _person(RED)
    ref = _reference("blue")
    right, _ = _person(BLUE)
    wrong, _ = _person(GREEN)
    verdicts = {name: verify_edit(img, source, [region], ["uppercloth"], [ref], 0.5)
                for name, img in (("right", right), ("wrong", wrong), ("unchanged", source))}
    assert verdicts["right"].score > 0.8 and verdicts["right"].passed
    assert verdicts["unchanged"].score < 0.2 and not verdicts["unchanged"].passed
    assert verdicts["wrong"].score < verdicts["right"].score
    assert not verdicts["wrong"].passed
    rec = verdicts["right"].record()
    assert rec["passed"] is True and rec["attributes"][0]["type"] == "uppercloth"


def test_a_grey_blur_between_source_and_reference_fails():
    source, region = _person((240, 212, 36))  # yellow
    blur, _ = _person(GREY)
    verdict = verify_edit(blur, source, [region], ["uppercloth"], [_reference("blue")], 0.5)
    assert not verdict.passed


def test_striped_reference_compares_distributions_not_means():
    source, region = _person(GREEN)
    ref = _reference("white", "striped", "black")
    striped, _ = _person((238, 238, 235), stripes=(28, 28, 32))
    grey, _ = _person(GREY)  # the striped reference's mean colour, but not its colours
    s_striped = verify_edit(striped, source, [region], ["uppercloth"], [ref], 0.5).score
    s_grey = verify_edit(grey, source, [region], ["uppercloth"], [ref], 0.5).score
    assert s_striped > s_grey + 0.2 and s_striped > 0.5


def test_reference_like_the_source_is_judged_by_absolute_agreement():
    source, region = _person(RED)
    kept = verify_edit(source, source, [region], ["uppercloth"], [_reference("red")], 0.5)
    assert kept.passed  # nothing to change: the region already wears the reference colour


def test_the_weakest_attribute_decides():
    source, region = _person(RED)
    right, _ = _person(BLUE)
    tiny = np.zeros_like(region)
    tiny[0, 0] = True  # too small to judge: ignored, not failed
    v = verify_edit(right, source, [region, tiny], ["uppercloth", "hair"], [_reference("blue"), _reference("red")], 0.5)
    assert v.passed and v.attributes[1].score is None
    v2 = verify_edit(right, source, [region, region], ["uppercloth", "bottomcloth"],
                     [_reference("blue"), _reference("green")], 0.5)
    assert v2.score == min(a.score for a in v2.attributes) and not v2.passed


def test_colour_distance_is_symmetric_and_zero_for_equal_sets():
    a = np.random.default_rng(0).uniform(0, 100, (50, 3))
    b = a + 10
    assert colour_distance(a, a) == 0
    assert colour_distance(a, b) == pytest.approx(colour_distance(b, a))


def test_best_of_n_keeps_the_best_verified_candidate_and_is_reproducible(model_dir, world, tmp_path):
    from dp_cli.edit.config import EditConfig
    from dp_cli.edit.runner import candidate_seed, run_dataset_edit

    def run(out, n):
        cfg = EditConfig(model=str(model_dir), dataset=world, catalog=world / "catalog", output_dir=out, persons=1,
                         steps=2, candidates=n, mask_dilation=0, feather=0, types=["uppercloth"], batch_size=8)
        run_dataset_edit(cfg)
        return [json.loads(line) for line in (out / "edits.jsonl").read_text().splitlines()]

    three = run(tmp_path / "a", 3)
    again = run(tmp_path / "b", 3)
    one = run(tmp_path / "c", 1)
    for row, same, single in zip(three, again, one):
        scores = [c["score"] for c in row["candidates"]]
        assert len(scores) == 3 and row["verify"]["score"] == pytest.approx(max(scores), abs=1e-4)
        assert row["seed"] == row["candidates"][int(np.argmax(scores))]["seed"]
        assert [c["seed"] for c in row["candidates"]] == [candidate_seed(single["seed"], k) for k in range(3)]
        assert row["status"] == ("passed" if row["verify"]["score"] >= 0.5 else "failed")
        assert same["seed"] == row["seed"]  # reproducible per seed
        assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / row["image"])),
                              np.asarray(Image.open(tmp_path / "b" / same["image"])))
        # candidate 0 is the plain edit: with one candidate, the image is that seed's edit
        assert single["seed"] == row["candidates"][0]["seed"]
        assert single["candidates"][0]["score"] == pytest.approx(row["candidates"][0]["score"], abs=1e-4)
        assert row["reference_attribute_list"][0]["preparation"]["method"] == "background"


def test_a_reference_is_prepared_the_same_wherever_the_catalog_lies(world, tmp_path):
    import shutil

    from dp_cli.edit.runner import prepared_reference

    src = world / "catalog" / "images" / "hair_000.png"
    copy = tmp_path / "elsewhere" / "h.png"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    a, b = prepared_reference(str(src)), prepared_reference(str(copy))
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_a_pale_edit_does_not_match_the_reference_rim():
    """A thin red hair piece's foreground ends in a rim of pink-white blends with the photo's background; a
    region that turned pale must not pass by matching that rim, while a red one passes."""
    ref = prepare_reference(render_item(Attribute("hair", "hair", "red", style="short"), 32, (240, 242, 246)))
    source, region = _person((238, 200, 120))  # blond
    pale, _ = _person((214, 206, 204))
    red, _ = _person((190, 30, 34))
    assert not verify_edit(pale, source, [region], ["hair"], [ref], 0.5).passed
    assert verify_edit(red, source, [region], ["hair"], [ref], 0.5).passed


def test_a_flat_region_does_not_keep_a_patterned_reference():
    source, region = _person(GREEN)
    ref = _reference("red", "checked", "white")
    flat, _ = _person((220, 140, 140))  # near the checks' mean colour, no checks
    v = verify_edit(flat, source, [region], ["uppercloth"], [ref], 0.5)
    assert not v.passed and v.attributes[0].spread[0] < v.attributes[0].spread[1]


def test_retries_try_new_seeds_only_for_edits_that_fail(model_dir, world, tmp_path):
    from dp_cli.edit.config import EditConfig
    from dp_cli.edit.runner import candidate_seed, run_dataset_edit

    def run(out, min_score, retries=2):
        cfg = EditConfig(model=str(model_dir), dataset=world, catalog=world / "catalog", output_dir=out, persons=1,
                         steps=2, candidates=2, retries=retries, min_score=min_score, mask_dilation=0, feather=0,
                         types=["uppercloth"], batch_size=8)
        summary = run_dataset_edit(cfg)
        rows = [json.loads(line) for line in (out / "edits.jsonl").read_text().splitlines()]
        assert summary.extra["seeds"] == sum(len(r["candidates"]) for r in rows)  # what the summary reports
        return rows

    passing = run(tmp_path / "pass", 0.0)  # every first candidate passes: no retry
    failing = run(tmp_path / "fail", 1.0)  # (an untrained model) nothing passes: every round is tried
    plain = run(tmp_path / "plain", 1.0, retries=0)
    for ok, bad, first in zip(passing, failing, plain):
        assert [c["seed"] for c in ok["candidates"]] == [candidate_seed(first["candidates"][0]["seed"], k)
                                                         for k in range(2)]  # one round only
        seeds = [c["seed"] for c in bad["candidates"]]
        assert seeds == [candidate_seed(first["candidates"][0]["seed"], k) for k in range(6)]  # 2 per round, 3 rounds
        scores = [c["score"] for c in bad["candidates"]]
        assert bad["status"] == "failed" and bad["seed"] == seeds[int(np.argmax(scores))]
        assert scores[:2] == [c["score"] for c in first["candidates"]]  # the first round is the plain edit
        assert bad["settings"]["retries"] == 2


def test_preparation_records_outlive_the_prepared_image_cache(tmp_path, monkeypatch):
    """A catalog larger than the prepared-image cache: its manifest lines and warnings do not prepare a
    reference again."""
    from types import SimpleNamespace

    import dp_cli.data.reference as reference
    from dp_cli.edit import runner

    calls = []
    real = reference.prepare_reference
    monkeypatch.setattr(reference, "prepare_reference", lambda *a, **k: calls.append(1) or real(*a, **k))
    picture = np.full((40, 30, 3), 250, dtype=np.uint8)
    picture[8:32, 6:24] = (180, 30, 40)
    Image.fromarray(picture).save(tmp_path / "red_shirt.png")
    item = SimpleNamespace(image=tmp_path / "red_shirt.png", mask=None)
    first = runner.preparation_record(item)
    assert first["method"] == "background" and len(calls) == 1
    runner.prepared_reference.cache_clear()  # the image cache let it go
    assert runner.preparation_record(item) == first and len(calls) == 1
    assert runner.reference_warnings([SimpleNamespace(references=[item])]) == [] and len(calls) == 1


def test_a_reference_read_once_gives_the_verdicts_of_the_reference_itself(tmp_path, monkeypatch):
    """dp edit reads each reference's colours once per run (on its loading thread) and checks every image and
    seed against them: the same verdicts, to the last digit, as checking against the prepared reference."""
    from types import SimpleNamespace

    import dp_cli.edit.verify as verify
    from dp_cli.edit import runner

    source, region = _person(RED)
    for ref in (_reference("blue"), _reference("blue", "striped", "white")):
        colours = verify.reference_colours(ref)
        for edited in (_person(BLUE)[0], _person(GREEN)[0], _person(BLUE, stripes=(240, 240, 240))[0], source):
            a = verify_edit(edited, source, [region], ["uppercloth"], [ref], 0.5)
            b = verify_edit(edited, source, [region], ["uppercloth"], [colours], 0.5)
            assert a.record() == b.record()
    calls = []
    real = verify.reference_colours
    monkeypatch.setattr(verify, "reference_colours", lambda r: calls.append(1) or real(r))
    picture = np.full((40, 30, 3), 250, dtype=np.uint8)
    picture[8:32, 6:24] = (180, 30, 40)
    Image.fromarray(picture).save(tmp_path / "red_shirt.png")
    item = SimpleNamespace(image=tmp_path / "red_shirt.png", mask=None)
    assert runner.prepared_colours(item) is runner.prepared_colours(item) and len(calls) == 1


def test_a_grey_reference_wants_a_grey_garment():
    """The audit's case: a blue shirt for a grey reference over a beige source is nearer the grey than the
    beige was (ratio 0.63, and some blue pixels lie near the grey ones), but it is no grey shirt."""
    source, region = _person((226, 212, 190))  # beige
    ref = prepare_reference(Image.fromarray(np.pad(np.full((40, 40), 107, np.uint8), 10, constant_values=255)))
    blue, _ = _person((40, 80, 153))
    grey, _ = _person((110, 110, 112))
    wrong = verify_edit(blue, source, [region], ["uppercloth"], [ref], 0.5)
    right = verify_edit(grey, source, [region], ["uppercloth"], [ref], 0.5)
    assert not wrong.passed and wrong.attributes[0].chroma[0] > 40 and wrong.attributes[0].chroma[1] < 1
    assert right.passed and right.score > 0.8


def test_stripes_averaging_to_grey_are_no_grey_reference():
    """Red and cyan stripes (3 rows in 10 red) average to a near-grey mean colour; an edit wearing both
    colours, the red more, is judged by the pattern checks, not by the grey one."""
    red, cyan = (200, 30, 30), (30, 160, 160)
    rgb = np.array([red if k % 10 < 3 else cyan for k in range(40)], np.uint8)[:, None].repeat(40, 1)
    ref = prepare_reference(Image.fromarray(np.pad(rgb, ((10, 10), (10, 10), (0, 0)), constant_values=255)))
    source, region = _person((226, 212, 190))
    copy = source.copy()
    ys = np.nonzero(region.any(1))[0]
    for y in ys:
        copy[y][region[y]] = red if (y - ys[0]) % 4 < 3 else cyan
    verdict = verify_edit(copy, source, [region], ["uppercloth"], [ref], 0.5)
    assert verdict.attributes[0].chroma[1] < 10 and verdict.attributes[0].chroma[0] > 40
    assert verdict.passed  # a grey mean, yet no grey reference
