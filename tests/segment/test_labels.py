"""Label-set conversion: LIP/ATR/custom names -> our ATR ids, checked per attribute type."""

from __future__ import annotations

import numpy as np
import pytest

from dp_cli.data.attributes import ATR_LABELS, ATTRIBUTE_TYPES, LIP_LABELS, attribute_mask
from dp_cli.segment.labels import (atr_id, convert_map, lut_for_set, lut_from_names, normalize_name,
                                   types_present)


def crafted_lip_map() -> np.ndarray:
    """Every LIP label in its own band, plus a coat over an upper-clothes and a jumpsuit region."""
    m = np.zeros((len(LIP_LABELS) * 3, 12), np.int64)
    for i in range(len(LIP_LABELS)):
        m[i * 3:(i + 1) * 3, 2:10] = i
    m[0:2, 0:4] = LIP_LABELS.index("coat")
    return m


def test_lip_to_atr_keeps_every_attribute_mask():
    lip = crafted_lip_map()
    atr = convert_map(lip, lut_for_set("lip"), "crafted")
    for name in ATTRIBUTE_TYPES:
        np.testing.assert_array_equal(attribute_mask(atr, name, "atr"), attribute_mask(lip, name, "lip"),
                                      err_msg=name)
    assert atr.max() < len(ATR_LABELS)


def test_lip_specific_labels_land_on_their_attribute():
    lip = np.array([[LIP_LABELS.index(n) for n in ("coat", "jumpsuits", "skirt", "socks", "glove", "hair")]])
    atr = convert_map(lip, lut_for_set("lip"), "row")
    assert [ATR_LABELS[i] for i in atr[0]] == ["upper-clothes", "pants", "skirt", "left-leg", "left-arm", "hair"]
    assert types_present(atr) == ["hair", "uppercloth", "bottomcloth"]


def test_atr_is_identity():
    ids = np.arange(len(ATR_LABELS)).reshape(2, -1)
    np.testing.assert_array_equal(convert_map(ids, lut_for_set("atr"), "x"), ids)


def test_ids_outside_the_set_are_named():
    ids = np.array([[0, 2, 19, 40]])
    with pytest.raises(ValueError, match=r"crafted.png \(atr\): label id\(s\) \[19, 40\] outside the label set "
                                         r"\(valid ids: 0\.\.17\)"):
        convert_map(ids, lut_for_set("atr"), "crafted.png (atr)")


def test_custom_names_and_spellings():
    lut = lut_from_names({0: "Background", 1: "Upper_clothes", 2: "coat", 5: "left shoe"}, "custom")
    assert list(lut[[0, 1, 2, 5]]) == [0, 4, 4, 9]
    assert lut[3] == 255
    assert normalize_name(" Upper  Clothes ") == "upper-clothes"
    assert atr_id("Sunglasses") == 3 and atr_id("tail") is None
    with pytest.raises(ValueError, match="label\\(s\\) 7='tail' have no counterpart"):
        lut_from_names({0: "background", 7: "tail"}, "custom")
