"""The wheel is what users install: it holds every subpackage and the shipped toy model, installs as
`dp_cli` + `dp_models` (never a top-level `models`, which would shadow a user's own models/ package), and
runs `dp --help`, `dp toy` and `dp edit` from a user's project that has its own models/ package."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_table() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_package_list_names_every_subpackage():
    """pyproject.toml lists packages explicitly (models/ installs as dp_models): a new folder with an
    __init__.py must be added there, or the wheel silently lacks it."""
    table = _setuptools_table()
    listed = set(table["packages"])
    found = set()
    for package, folder in table["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in rel.parts:
                found.add(".".join((package, *rel.parts)))
    assert found == listed, (f"add to [tool.setuptools] packages: {sorted(found - listed)}; "
                             f"listed without an __init__.py: {sorted(listed - found)}")
    assert set(table["package-dir"]) == {"dp_cli", "dp_models"} and "models" not in listed


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without dp's variables and without PYTHONPATH (the fresh venv must find dp itself)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DP_") and k not in (
        "PYTHONPATH", "RANK", "WORLD_SIZE", "LOCAL_RANK", "VIRTUAL_ENV")}
    return {**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", **extra}


def _run(args, cwd, env, timeout=900) -> subprocess.CompletedProcess:
    run = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(map(str, args))} -> {run.returncode}\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    return run


@pytest.mark.slow
def test_wheel_installs_and_runs_beside_a_users_models_package(tmp_path):
    # 1. Build the wheel, and look inside.
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", dist, ROOT],
         tmp_path, _clean_env())
    (wheel,) = dist.glob("diverse_person-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"dp_cli", "dp_models"}, tops
    assert "dp_cli/assets/toy-model/model_index.json" in names and "dp_cli/prompts/annotate_v1.txt" in names
    assert any(n.startswith("dp_cli/assets/toy-model/unet/") for n in names)
    # 2. A fresh venv without dp; the wheel only. Its dependencies come from this environment's site-packages
    #    through PYTHONPATH, which does not run .pth files, so the editable install of this checkout stays out.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, _clean_env())
    py = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel],
         tmp_path, _clean_env())
    env = _clean_env(PYTHONPATH=sysconfig.get_paths()["purelib"])
    # 3. A user's ML project with its own models/ package.
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "__init__.py").write_text("USERS_OWN = True\n")
    where = _run([py, "-c", "import dp_cli, dp_models, models; print(dp_cli.__file__); print(dp_models.__file__); "
                            "print(models.USERS_OWN)"], project, env).stdout.split()
    assert all(Path(p).is_relative_to(venv) for p in where[:2]), where  # from the wheel, not this checkout
    assert where[2] == "True"  # the user's models/ is untouched
    # 4. dp runs from there: --help, a tiny toy world, a two-step edit with the shipped toy model.
    assert "Usage: python -m dp_cli" in _run([py, "-m", "dp_cli", "--help"], project, env).stdout
    _run([py, "-m", "dp_cli", "-q", "toy", "--out", "w", "--persons", "2", "--height", "64", "--width", "32"],
         project, env)
    _run([py, "-m", "dp_cli", "-q", "edit", "--dataset", "w", "--catalog", "w/catalog", "--output-dir", "e",
          "--persons", "1", "--steps", "2"], project, env)
    assert (project / "e" / "edits.jsonl").read_text(encoding="utf-8").strip()
