"""`dp segment import`: existing maps (the dataset's own, or a folder of SCHP-style PNGs) -> ATR ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dp_cli.data.attributes import ATR_LABELS, ATTRIBUTE_TYPES, LIP_LABELS, attribute_mask
from dp_cli.data.formats.native import load_native

ATR_TO_LIP = {a: LIP_LABELS.index(a) for a in ATR_LABELS if a in LIP_LABELS}
ATR_TO_LIP.update({"belt": LIP_LABELS.index("pants")})  # LIP has no belt


def maps_of(root: Path) -> dict[str, np.ndarray]:
    ds = load_native(root)
    return {r.id: np.asarray(Image.open(ds.parsing_path(r))) for r in ds.records if r.parsing}


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def write_lip_maps(dataset: Path, folder: Path, mode: str = "P") -> dict[str, np.ndarray]:
    """SCHP-style output: `<image stem>.png`, palette PNGs whose indices are LIP ids (coat on odd images)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = load_native(dataset)
    lips = {}
    for i, rec in enumerate(ds.records):
        atr = np.asarray(Image.open(ds.parsing_path(rec)))
        lip = np.zeros_like(atr)
        for name, lid in ATR_TO_LIP.items():
            lip[atr == ATR_LABELS.index(name)] = lid
        if i % 2:
            lip[atr == ATR_LABELS.index("upper-clothes")] = LIP_LABELS.index("coat")
        img = Image.fromarray(lip, mode="L")
        if mode == "P":
            img = img.convert("P")
            img.putpalette([v for k in range(256) for v in (k * 7 % 256, k * 13 % 256, k * 29 % 256)])
        img.save(folder / (Path(rec.image).stem + ".png"))
        lips[rec.id] = lip
    return lips


def test_native_maps_survive_a_round_trip(dp, dataset, tmp_path):
    r = dp("--json", "segment", "import", "-d", dataset, "-o", tmp_path / "a")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["written"] == 5
    original = maps_of(dataset)
    assert maps_of(tmp_path / "a").keys() == original.keys()
    for rid, m in maps_of(tmp_path / "a").items():
        np.testing.assert_array_equal(m, original[rid])
    r = dp("segment", "import", "-d", tmp_path / "a", "-o", tmp_path / "b", "--maps", tmp_path / "a" / "parsing")
    assert r.exit_code == 0, r.output
    for rid, m in maps_of(tmp_path / "b").items():
        np.testing.assert_array_equal(m, original[rid])


def test_json_names_the_output_folder_absolute(dp, dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = dp("--json", "segment", "import", "-d", dataset, "-o", "rel")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["out"] == str(tmp_path / "rel")


def test_following_the_label_set_hint_after_a_failed_import_works(dp, dataset, tmp_path):
    write_lip_maps(dataset, tmp_path / "schp")  # LIP ids up to 19: not ATR (0..17)
    args = ("segment", "import", "-d", dataset, "-o", tmp_path / "out", "--maps", tmp_path / "schp")
    line = one_error_line(dp(*args, "--label-set", "atr"))
    assert "--label-set" in line
    r = dp(*args, "--label-set", "lip")
    assert r.exit_code == 0, r.output


def test_an_import_failing_half_way_leaves_no_folder(dp, dataset, tmp_path):
    from PIL import Image

    write_lip_maps(dataset, tmp_path / "schp")
    last = sorted((tmp_path / "schp").glob("*.png"))[-1]  # the maps before it convert, then this one fails
    Image.open(last).resize((7, 5)).save(last)
    out = tmp_path / "new" / "out"
    line = one_error_line(dp("segment", "import", "-d", dataset, "-o", out, "--maps", tmp_path / "schp",
                             "--label-set", "lip"))
    assert last.name in line
    assert not (tmp_path / "new").exists()


def test_lip_maps_from_a_folder_keep_every_attribute(dp, dataset, tmp_path):
    lips = write_lip_maps(dataset, tmp_path / "schp")
    r = dp("--json", "segment", "import", "-d", dataset, "-o", tmp_path / "out", "--maps", tmp_path / "schp",
           "--label-set", "lip")
    assert r.exit_code == 0, r.output
    converted = maps_of(tmp_path / "out")
    for rid, lip in lips.items():
        for t in ATTRIBUTE_TYPES:
            np.testing.assert_array_equal(attribute_mask(converted[rid], t, "atr"), attribute_mask(lip, t, "lip"))
    share = json.loads(r.stdout)["type_share"]
    assert (share["shoes"], share["uppercloth"], share["bag"]) == (1.0, 1.0, 0.0)  # LIP has no bag


def test_label_id_outside_the_set_keeps_the_output(dp, dataset, tmp_path):
    write_lip_maps(dataset, tmp_path / "schp", mode="L")
    out = tmp_path / "out"
    args = ("segment", "import", "-d", dataset, "-o", out, "--maps", tmp_path / "schp", "--label-set", "lip")
    assert dp(*args).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = tmp_path / "schp" / "000.png"
    arr = np.asarray(Image.open(bad)).copy()
    arr[0, 0] = 25
    Image.fromarray(arr, mode="L").save(bad)
    line = one_error_line(dp(*args))
    assert "000.png (lip): label id(s) [25] outside the label set (valid ids: 0..19)" in line
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_bad_maps_are_named(dp, dataset, tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    Image.new("L", (5, 5), 0).save(folder / "000.png")
    line = one_error_line(dp("segment", "import", "-d", dataset, "-o", tmp_path / "o1", "--maps", folder))
    assert "000.png: map is 5x5 but its image 000.png is 24x48" in line
    Image.new("RGB", (24, 48)).save(folder / "000.png")
    line = one_error_line(dp("segment", "import", "-d", dataset, "-o", tmp_path / "o2", "--maps", folder))
    assert "mode 'RGB'" in line
    assert "maps folder not found" in one_error_line(
        dp("segment", "import", "-d", dataset, "-o", tmp_path / "o3", "--maps", tmp_path / "none"))


def test_missing_maps_are_reported_and_left_without_parsing(dp, dataset, tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    ds = load_native(dataset)
    Image.open(ds.parsing_path(ds.records[2])).save(folder / "002.png")
    r = dp("--json", "segment", "import", "-d", dataset, "-o", tmp_path / "out", "--maps", folder)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["missing"] == 4 and "4 image(s) had no parsing map" in r.output
    out = load_native(tmp_path / "out")
    assert [rec.parsing is not None for rec in out.records] == [False, False, True, False, False]


def test_custom_table_and_cleanup(dp, dataset, tmp_path):
    folder = tmp_path / "maps"
    folder.mkdir()
    m = np.full((48, 24), 7, np.uint8)
    m[10:40, 5:20] = 3  # "shirt" in the user's ids
    m[20, 10] = 9  # a one-pixel speck
    Image.fromarray(m, mode="L").save(folder / "000.png")
    cfg = tmp_path / "dp.toml"
    # min_island_pixels is given for a 384x128 map: 200 there are 4.7 pixels of this 48x24 map
    cfg.write_text('[segment]\nlabel_set = "custom"\ncleanup = true\nmin_island_pixels = 200\n'
                   '[segment.labels]\n7 = "background"\n3 = "upper-clothes"\n9 = "hat"\n')
    r = dp("--config", cfg, "segment", "import", "-d", dataset, "-o", tmp_path / "out", "--maps", folder)
    assert r.exit_code == 0, r.output
    got = maps_of(tmp_path / "out")["r0"]
    expected = np.where(m == 3, 4, 0)
    expected[20, 10] = 4
    np.testing.assert_array_equal(got, expected)


def test_toy_world_maps_survive_import_and_layout_is_stable(dp, tmp_path):
    r = dp("toy", "-o", tmp_path / "toy", "--persons", 2, "--images-per-person", 1, "--catalog-per-type", 1)
    assert r.exit_code == 0, r.output
    assert dp("segment", "import", "-d", tmp_path / "toy", "-o", tmp_path / "a").exit_code == 0
    toy, out = load_native(tmp_path / "toy"), load_native(tmp_path / "a")
    assert [x.image for x in out.records] == [x.image for x in toy.records]  # images/ is not nested again
    for a, b in zip(toy.records, out.records):
        np.testing.assert_array_equal(np.asarray(Image.open(toy.parsing_path(a))),
                                      np.asarray(Image.open(out.parsing_path(b))))


def _add_specks(m: np.ndarray, side: int) -> tuple[tuple[slice, slice], tuple[int, int]]:
    """Put a `side`-square of sunglasses (a label no toy map has) inside the upper clothes, and a one-pixel
    hair speck right below it; returns where the square and the hair speck are."""
    shirt = ATR_LABELS.index("upper-clothes")
    inside = np.ones_like(m, dtype=bool)
    for dy in range(-1, side + 3):
        for dx in range(-1, side + 1):
            inside &= np.roll(m == shirt, (-dy, -dx), axis=(0, 1))
    ys, xs = np.nonzero(inside)
    y, x = int(ys[len(ys) // 2]), int(xs[len(xs) // 2])
    m[y:y + side, x:x + side] = ATR_LABELS.index("sunglasses")
    m[y + side + 1, x] = ATR_LABELS.index("hair")
    return (slice(y, y + side), slice(x, x + side)), (y + side + 1, x)


@pytest.mark.parametrize("size", [(64, 32), (256, 128)])
def test_cleanup_of_toy_maps_keeps_every_part_and_removes_specks(dp, tmp_path, size):
    toy = tmp_path / "toy"
    r = dp("toy", "-o", toy, "--persons", 8, "--height", size[0], "--width", size[1])
    assert r.exit_code == 0, r.output
    ds = load_native(toy)
    first = ds.parsing_path(ds.records[0])
    m = np.asarray(Image.open(first)).copy()
    square, hair = _add_specks(m, side=max(1, size[0] // 64))  # 1 px at 64x32 (island: 1.3), 16 px at 256x128 (21)
    Image.fromarray(m, mode="L").save(first)
    r = dp("--json", "segment", "import", "-d", toy, "-o", tmp_path / "raw")
    assert r.exit_code == 0, r.output
    share_raw = json.loads(r.stdout)["type_share"]
    r = dp("--json", "segment", "import", "-d", toy, "-o", tmp_path / "clean", "--cleanup")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    raw, clean = maps_of(tmp_path / "raw"), maps_of(tmp_path / "clean")
    specked = ds.records[0].id
    for rid, before in raw.items():
        kept = set(np.unique(before).tolist()) - ({ATR_LABELS.index("sunglasses")} if rid == specked else set())
        assert set(np.unique(clean[rid]).tolist()) == kept, rid  # every label of every map is still there
    shirt = ATR_LABELS.index("upper-clothes")
    assert (clean[specked][square] == shirt).all() and clean[specked][hair] == shirt  # the specks are gone
    assert summary["type_share"] == {**share_raw, "sunglasses": 0.0}
    assert summary["cleanup_removed"]["sunglasses"] == 1.0 and summary["cleanup_removed"]["hair"] < 0.5
    warnings = [ln for ln in r.output.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1
    assert "removed 100% of the sunglasses pixels (found in 1 map before, 0 after)" in warnings[0]
