"""`dp edit --start-merge-step N` (the seed's step index) is `--delayed-conditioning N/steps`."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dp_cli.app import app
from dp_cli.edit.config import EditConfig
from dp_cli.errors import ConfigError

STEPS = 3


def invoke(args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def one_image(model_dir, world):
    """`dp edit` one-image arguments for a toy person with hair (without --out)."""
    from dp_cli.data.formats.native import load_native

    rec = next(r for r in load_native(world).split("train") if (np.asarray(Image.open(world / r.parsing)) == 2).any())
    return ["edit", "--model", model_dir, "--image", world / rec.image, "--parsing", world / rec.parsing,
            "--caption", rec.captions[0], "--attribute", f"hair={world / 'catalog/images/hair_000.png'}",
            "--steps", STEPS, "--mask-dilation", "1", "--feather", "1"]


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("step", range(STEPS + 1))
def test_the_fraction_gives_back_the_step(step):
    cfg = EditConfig(steps=STEPS).with_start_merge_step(step)
    assert cfg.delayed_conditioning == step / STEPS
    assert int(round(cfg.delayed_conditioning * STEPS)) == step  # what DPEditPipeline.denoise computes


def test_start_merge_step_edits_like_the_fraction(one_image, tmp_path):
    outs = {}
    for name, extra in (("step", ["--start-merge-step", 2]), ("fraction", ["--delayed-conditioning", 2 / STEPS]),
                        ("seed", ["--start_merge_step", 2]), ("none", [])):
        res = invoke([*one_image, *extra, "--out", tmp_path / f"{name}.png"])
        assert res.exit_code == 0, res.output
        outs[name] = digest(tmp_path / f"{name}.png")
    assert outs["step"] == outs["fraction"] == outs["seed"] != outs["none"]


def test_both_is_a_usage_error_and_a_step_past_the_end_is_refused(one_image, tmp_path):
    res = invoke([*one_image, "--start-merge-step", 1, "--delayed-conditioning", 0.2, "--out", tmp_path / "x.png"])
    err = res.stderr.strip()
    assert res.exit_code == 2 and len(err.splitlines()) == 1, res.output
    assert "--start-merge-step" in err and "--delayed-conditioning" in err and not (tmp_path / "x.png").exists()
    res = invoke([*one_image, "--start-merge-step", STEPS + 1, "--out", tmp_path / "x.png"])
    assert res.exit_code == 1 and "start_merge_step 4" in res.stderr and "0 .. 3" in res.stderr, res.output
    with pytest.raises(ConfigError):
        EditConfig(steps=STEPS).with_start_merge_step(-1)
