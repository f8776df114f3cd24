"""README.md is assembled from docs/readme/ sections, and CI runs the README's test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDER = ["00-intro", "demo", "toy", "segment", "train", "edit", "annotate", "export", "eval", "baseline",
         "toy-model", "results"]


def test_readme_is_the_sections_in_order():
    sections = "".join((ROOT / "docs" / "readme" / f"{name}.md").read_text() + "\n" for name in ORDER)
    assert (ROOT / "README.md").read_text() == sections, \
        "regenerate README.md with `make readme`"
    assert sorted(p.stem for p in (ROOT / "docs" / "readme").glob("*.md")) == sorted(ORDER)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_names_every_registered_command():
    from dp_cli.app import COMMANDS

    readme = (ROOT / "README.md").read_text()
    assert all(f"dp {name}" in readme for name in COMMANDS)
