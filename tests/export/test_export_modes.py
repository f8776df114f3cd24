"""An export folder gets the permissions the umask gives a new folder (the staging folder from mkdtemp is
0700 and is renamed into place as it is), like every other output folder dp makes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dp_cli.data.loading import load_dataset
from dp_cli.export import export_dataset


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("fmt", ["native", "cuhk-pedes"])
def test_export_folder_and_its_subfolders_get_the_umask_modes(tbps, tmp_path, umask_022, fmt):
    out = tmp_path / "out"
    export_dataset(load_dataset(tbps("native")), fmt, out)
    assert _mode(out) == 0o755
    folders = [p for p in out.rglob("*") if p.is_dir()]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert folders and all(_mode(p) == 0o755 for p in folders), [(p, oct(_mode(p))) for p in folders]
    assert files and all(_mode(p) == 0o644 for p in files), [(p, oct(_mode(p))) for p in files]


def test_overwritten_export_gets_the_umask_modes_too(tbps, tmp_path, umask_022):
    src = load_dataset(tbps("native"))
    out = tmp_path / "out"
    export_dataset(src, "native", out)
    export_dataset(src, "native", out, overwrite=True)
    assert _mode(out) == 0o755


def test_dp_export_under_umask_022_is_readable_by_others(tbps, tmp_path, subprocess_env):
    """The command as a user runs it: `umask 022; dp export ... --out x; stat -c %a x` gives 755."""
    src = tbps("native")
    out = tmp_path / "x"
    run = subprocess.run(["sh", "-c", f'umask 022 && "{sys.executable}" -m dp_cli export --dataset "{src}" '
                                      f'--format native --out "{out}"'],
                         cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert oct(_mode(out)) == oct(0o755)


def test_toy_world_root_gets_the_umask_modes(tmp_path, umask_022):
    from dp_cli.toy.world import generate_world

    generate_world(tmp_path / "w", persons=2, height=32, width=16, images_per_person=1, catalog_per_type=1)
    assert _mode(tmp_path / "w") == 0o755
