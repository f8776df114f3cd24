"""An unreachable hub fails in seconds, in one line, without the hub client's retry lines (issue 15 item 8)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEAD = "http://127.0.0.1:9"  # the discard port: connection refused


@pytest.fixture
def dead_hub(monkeypatch, tmp_path):
    from dp_models import loading

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", DEAD)
    monkeypatch.setattr(loading, "_REACHABLE", {})


def test_dp_model_loading_fails_fast(dead_hub, capfd, caplog):
    from dp_cli.errors import ModelError
    from dp_models.dp_model import DPConfig, DPModel

    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        DPModel.from_pretrained_parts("nobody/nothing", "nobody/encoder", DPConfig())
    assert time.monotonic() - start < 5
    err = info.value
    assert "cannot be reached" in str(err) and "\n" not in str(err)
    assert "not in the local Hugging Face cache" in err.hint and "hf download nobody/nothing" in err.hint
    with pytest.raises(ModelError, match="cannot be reached"):
        DPModel.from_pretrained("nobody/dp-model")
    out = capfd.readouterr()
    assert "Retrying" not in out.out + out.err + caplog.text


def test_segment_model_loading_fails_fast(dead_hub):
    from dp_cli.errors import ModelError
    from dp_cli.segment.model import load_segmenter

    start = time.monotonic()
    with pytest.raises(ModelError, match="cannot be reached"):
        load_segmenter("nobody/segformer", "cpu")
    assert time.monotonic() - start < 5


def test_offline_mode_does_not_probe(monkeypatch):
    from dp_models import loading

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", DEAD)
    monkeypatch.setattr(loading, "_REACHABLE", {})
    loading.ensure_hub_reachable("nobody/nothing", "model")
    assert loading._REACHABLE == {}


def test_cli_train_one_line_no_retry_lines(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DP_") and k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RANK", "WORLD_SIZE",
                                                    "LOCAL_RANK")}
    env.update(HF_ENDPOINT=DEAD, HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    from dp_cli.toy.world import generate_world

    generate_world(tmp_path / "data", persons=2, seed=0, height=64, width=32)  # the dataset is read first
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dp_cli", "train", "--pretrained-model", "nobody/nothing",
                           "--image-encoder", "nobody/encoder", "--dataset", str(tmp_path / "data"),
                           "--output-dir", str(tmp_path / "out"), "--max-train-steps", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stderr
    assert "Retrying" not in proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "not in the local Hugging Face cache" in lines[0], \
        proc.stderr
    assert elapsed < 25, elapsed  # interpreter + torch import included; before: 31 s of retries


def test_hub_warnings_are_quieted_unless_the_dp_logger_asks_for_detail():
    """dp_models reads the detail wish from the `dp` logger (set by `dp --verbose`), not from dp_cli's console."""
    import logging

    from huggingface_hub.utils import logging as hub_logging
    from typer.testing import CliRunner

    from dp_cli import console
    from dp_cli.app import app
    from dp_models import loading

    try:
        hub_logging.set_verbosity_warning()
        loading.quiet_hub_logging()
        assert hub_logging.get_verbosity() == hub_logging.ERROR  # as a library: quiet
        assert CliRunner().invoke(app, ["--verbose", "toy", "--help"]).exit_code == 0
        hub_logging.set_verbosity_warning()
        loading.quiet_hub_logging()
        assert hub_logging.get_verbosity() == hub_logging.WARNING  # dp --verbose: the hub's own lines stay
        assert CliRunner().invoke(app, ["toy", "--help"]).exit_code == 0
        loading.quiet_hub_logging()
        assert hub_logging.get_verbosity() == hub_logging.ERROR
    finally:
        logging.getLogger("dp").setLevel(logging.NOTSET)
        console.STATE = console.AppState()


def _cache_snapshot(cache: Path, repo_id: str, source: Path, commit: str = "0" * 40) -> Path:
    """`source` placed in a Hugging Face hub cache as repo_id's snapshot of `main` (the cache's own layout)."""
    import shutil

    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(source, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    return repo / "snapshots" / commit


def test_unreachable_hub_falls_back_to_the_local_cache(dead_hub, monkeypatch, tmp_path, tiny_dir, caplog):
    """A cluster node without internet loads a model that is in its Hugging Face cache without HF_HUB_OFFLINE."""
    from huggingface_hub import constants

    from dp_cli.errors import ModelError
    from dp_models import loading
    from dp_models.dp_model import DPConfig, DPModel

    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    sd = _cache_snapshot(cache, "someone/sd-tiny", tiny_dir / "sd")
    _cache_snapshot(cache, "someone/clip-tiny", tiny_dir / "clip-vision")
    with caplog.at_level("WARNING", logger="dp"):
        assert loading.checked_ref("someone/sd-tiny", "pretrained model") == (str(sd.resolve()), True)
    assert "comes from the local cache" in caplog.text
    model = DPModel.from_pretrained_parts("someone/sd-tiny", "someone/clip-tiny", DPConfig())
    assert model.unet.config.cross_attention_dim == model.text_encoder.config.hidden_size
    with pytest.raises(ModelError, match="cannot be reached"):  # not cached: the one-line error as before
        loading.checked_ref("someone/not-cached", "pretrained model")
