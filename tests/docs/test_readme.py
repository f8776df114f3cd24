"""README.md is assembled from docs/readme/ sections, and CI runs the README's test command."""

from pathlib import Path

from dp_cli import docs_build, registry

ROOT = Path(__file__).resolve().parents[2]


def test_readme_is_the_sections_in_order():
    order = docs_build.readme_sections()
    assert order == ["00-intro", "demo", *[c.name for c in registry.COMMANDS if c.name != "demo"],
                     "toy-model", "results"]
    sections = "".join((ROOT / "docs" / "readme" / f"{name}.md").read_text() + "\n" for name in order)
    assert (ROOT / "README.md").read_text() == sections == docs_build.readme(), \
        "regenerate README.md with `make readme`"
    assert sorted(p.stem for p in (ROOT / "docs" / "readme").glob("*.md")) == sorted(order)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_names_every_registered_command():
    from dp_cli.app import COMMANDS

    readme = (ROOT / "README.md").read_text()
    assert all(f"dp {name}" in readme for name in COMMANDS)


def test_the_app_and_the_config_tables_follow_the_registry():
    from dp_cli.app import COMMANDS, app
    from dp_cli.config import SECTIONS

    names = [c.name for c in registry.COMMANDS]
    assert list(COMMANDS) == names
    assert list(SECTIONS) == ["data", *names]
    registered = [i.name for i in app.registered_commands] + [g.name for g in app.registered_groups]
    assert sorted(registered) == sorted(names)
