"""README.md is built from docs/readme/head.md and the command registry, links one page per command under
docs/, every link of the docs resolves, and CI runs the README's test command."""

import re
from pathlib import Path

from dp_cli import docs_build, registry

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").glob("*.md"))


def test_readme_is_built_from_head_and_registry():
    assert (ROOT / "README.md").read_text() == docs_build.readme(), "regenerate README.md with `make readme`"
    assert [p.name for p in (ROOT / "docs" / "readme").iterdir()] == ["head.md"]


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


def test_every_command_has_a_page_linked_in_registry_order():
    readme = (ROOT / "README.md").read_text()
    at = [readme.index(f"]({c.page})") for c in registry.COMMANDS]
    assert at == sorted(at)
    for c in registry.COMMANDS:
        assert f"`dp {c.name}`" in (ROOT / c.page).read_text().splitlines()[0], c.page


def test_readme_links_every_page_of_docs():
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in PAGES if f"](docs/{p.name})" not in readme] == []


def _anchors(text: str) -> set[str]:
    """GitHub's anchors of a Markdown page's headings (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#+ (.*)$", text, re.M)}


def test_every_relative_link_and_anchor_resolves():
    bad = []
    for page in [ROOT / "README.md", *PAGES]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and anchor not in _anchors(linked.read_text())):
                bad.append(f"{page.relative_to(ROOT)}: {target}")
    assert bad == []


def test_long_pages_have_contents_lines_naming_every_section():
    for page in PAGES:
        text = page.read_text()
        sections = _anchors(text) - _anchors(text.splitlines()[0])
        if len(sections) >= 3:
            line = next((l for l in text.splitlines() if l.startswith("On this page: ")), "")
            assert set(re.findall(r"\]\(#([^)]+)\)", line)) == sections, page.name
