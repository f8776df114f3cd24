"""`dp segment --model` on a replica of mattmdjaga/segformer_b2_clothes (its 18 labels, its preprocessor)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from dp_cli.data.attributes import ATR_LABELS


def test_segformer_b2_clothes_layout(dp, dataset, tmp_path, hl):
    from dp_cli.data.formats.native import load_native
    from dp_cli.segment.model import load_segmenter

    folder = hl.segformer_b2_clothes(tmp_path / "segformer_b2_clothes")
    seg = load_segmenter(str(folder), "cpu")
    names = hl.SEGFORMER_B2_CLOTHES_LABELS
    assert [ATR_LABELS[seg.lut[i]] for i in range(len(names))] == [n.lower() for n in names]
    out = tmp_path / "out"
    r = dp("--json", "segment", "--dataset", dataset, "--out", out, "--model", folder)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["written"] == 5
    ds = load_native(out)
    for rec in ds.records:
        labels = np.asarray(Image.open(ds.parsing_path(rec)))
        assert labels.shape == np.asarray(Image.open(ds.image_path(rec))).shape[:2]
        assert labels.max() < len(ATR_LABELS)
