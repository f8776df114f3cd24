"""`dp eval retrieval --figure`: the CMC curve drawn by matplotlib when the `plots` extra is installed."""

from __future__ import annotations

import pytest
from PIL import Image

from dp_cli.eval import cmc


def test_figure_is_drawn_by_matplotlib_when_installed(tmp_path):
    pytest.importorskip("matplotlib")
    assert cmc.have_matplotlib()
    curves = {"model a": [40.0, 60.0, 75.0, 90.0, 100.0], "model b": [20.0, 30.0, 50.0, 70.0, 80.0]}
    path = cmc.save_cmc(tmp_path / "cmc.png", curves, "CMC: R1 40.0")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (640, 420)
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours  # matplotlib's first two line colours
    with pytest.raises(ValueError, match="no CMC values"):
        cmc.plot_cmc({})


def test_without_matplotlib_the_figure_falls_back_to_pil(tmp_path, monkeypatch):
    monkeypatch.setattr(cmc, "have_matplotlib", lambda: False)
    path = cmc.save_cmc(tmp_path / "cmc.png", {"a": [50.0, 100.0]})
    with Image.open(path) as im:
        assert im.size == (640, 420)
