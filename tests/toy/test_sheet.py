"""The sample sheet and the parsing colouring used by the demo and the README."""

import numpy as np
import pytest
from PIL import Image

from dp_cli.data.formats.native import load_native
from dp_cli.toy.sheet import PARSING_COLORS, colorize_parsing, sample_sheet


def test_colorize_parsing_gives_each_label_its_colour():
    labels = np.arange(18, dtype=np.uint8).reshape(3, 6)
    rgb = np.asarray(colorize_parsing(labels))
    assert rgb.shape == (3, 6, 3)
    assert (rgb.reshape(-1, 3) == PARSING_COLORS).all()
    assert len({tuple(c) for c in PARSING_COLORS}) == 18


def test_sample_sheet_shows_persons_and_their_parsing(tiny_world):
    ds = load_native(tiny_world)
    sheet = sample_sheet(ds, persons=4, columns=2, catalog_items=3)
    w, h = 32, 64
    assert sheet.width >= 2 * (2 * w) and sheet.height >= 2 * h + w
    first = next(r for r in ds.records if r.person_id == ds.records[0].person_id)
    cell = np.asarray(sheet)[6:6 + h, 6:6 + w]
    assert np.array_equal(cell, np.asarray(Image.open(ds.image_path(first))))
    parsing = np.asarray(sheet)[6:6 + h, 6 + w + 6:6 + 2 * w + 6]
    assert np.array_equal(parsing, np.asarray(colorize_parsing(np.asarray(Image.open(ds.parsing_path(first))))))


def test_sample_sheet_without_records_is_refused(tmp_path):
    with pytest.raises(Exception, match="not found"):
        sample_sheet(tmp_path)
