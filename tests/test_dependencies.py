"""Every third-party package that dp imports is declared in pyproject.toml: what dp_cli/ and models/ import
in `dependencies`, what tests/ imports in `dependencies` or the `test` extra. A package that is only
installed by chance (a dependency of a dependency) would be missing from a fresh install."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
OWN = {"dp_cli", "dp_models", "models", "tests", "conftest"}


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement string ('huggingface_hub>=2.4; ...' -> 'huggingface-hub')."""
    return re.sub(r"[-_.]+", "-", re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)).lower()


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {_name(r) for r in project["dependencies"]}, {_name(r) for r in project["optional-dependencies"]["test"]}


def _extras() -> set[str]:
    """Distributions of the optional extras other than `test` (e.g. `plots`: matplotlib)."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    return {_name(r) for name, reqs in extras.items() if name != "test" for r in reqs}


def _imports(*folders: str) -> dict[str, list[str]]:
    """Top-level module -> files importing it (absolute imports, at any depth in the file)."""
    found: dict[str, list[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    found.setdefault(name.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def _undeclared(imports: dict[str, list[str]], declared: set[str]) -> list[str]:
    dists = md.packages_distributions()
    local = {p.stem for p in (ROOT / "tests").rglob("*.py")}  # test helpers imported by name (fake_openai)
    problems = []
    for module, files in sorted(imports.items()):
        if module in sys.stdlib_module_names or module in OWN | local or module == "__future__":
            continue
        names = {re.sub(r"[-_.]+", "-", d).lower() for d in dists.get(module, [])}
        if not names:  # not installed here: declared under its own name (e.g. tomli on Python < 3.11)?
            names = {re.sub(r"[-_.]+", "-", module).lower()}
        if not names & declared:
            problems.append(f"{module} (distribution {', '.join(sorted(names))}) imported by {files[0]}"
                            + (f" and {len(files) - 1} more" if len(files) > 1 else ""))
    return problems


def test_every_package_dp_imports_is_a_dependency():
    deps, _ = _declared()
    imports = _imports("dp_cli", "models")
    assert {"torch", "typer", "openai", "httpx2", "huggingface_hub"} <= set(imports)
    problems = _undeclared(imports, deps | _extras())  # an optional import must belong to an extra
    assert not problems, "declare in pyproject.toml [project] dependencies:\n" + "\n".join(problems)


def test_every_package_the_tests_import_is_declared():
    deps, test_extra = _declared()
    problems = _undeclared(_imports("tests"), deps | test_extra)
    assert not problems, "declare in pyproject.toml [project.optional-dependencies] test:\n" + "\n".join(problems)


def test_installed_versions_satisfy_the_declared_bounds():
    """The lower bounds are ones this environment has (so they were tried): none ahead of what is installed."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bad = []
    for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            bad.append(f"{req.name}: not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            bad.append(f"{text}: installed {version}")
    assert not bad, bad


def test_openai_is_the_httpx2_based_client():
    """dp annotate passes httpx2 objects to openai's client; openai < 3 is built on httpx and fails there."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    openai = next(r for r in deps if _name(r) == "openai")
    assert re.search(r">=\s*3(\.|$|,)", openai), openai
    requires = " ".join(md.requires("openai") or [])
    assert "httpx2" in requires, requires
