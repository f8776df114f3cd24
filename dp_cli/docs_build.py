"""README.md and dp.toml.example, built from docs/ and the command registry (`make readme`,
`make example-config`; tests/docs and tests/config check that the files in the tree are these).

    python -m dp_cli.docs_build readme|example-config
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from dp_cli import registry

ROOT = Path(__file__).resolve().parents[1]

# README.md: docs/readme/head.md (what dp is, set-up, a tour), then the contents: one page per command
# (docs/<name>.md, registry order, each with its one-line `dp --help` text), then these pages of docs/.
GUIDES = ("project-file", "FORMATS", "toy-model", "results", "MODELS", "code-layout")
MORE = (("benchmarks/README.md", "Benchmarks: the hand-run measuring scripts and their figures"),)


def page_title(path: Path) -> str:
    """The first line of a Markdown page, without its '# '."""
    return path.read_text(encoding="utf-8").splitlines()[0].removeprefix("# ")


def command_summaries() -> dict[str, str]:
    """Command name -> the one line `dp --help` shows for it."""
    from dp_cli import app

    def doc(module) -> str:
        return module.app.info.help if hasattr(module, "app") else module.command.__doc__

    return {c.name: app._one_line(doc(importlib.import_module(c.module))) for c in registry.COMMANDS}


def contents(root: Path = ROOT) -> str:
    """The README's table of contents."""
    rows = [f"| [`dp {name}`]({registry.COMMANDS_BY_NAME[name].page}) | {text} |"
            for name, text in command_summaries().items()]
    pages = [f"- [{page_title(root / 'docs' / f'{g}.md')}](docs/{g}.md)" for g in GUIDES]
    pages += [f"- [{title}]({path})" for path, title in MORE]
    return "\n".join(["## Contents", "", "| command | what it does |", "| --- | --- |", *rows, "",
                      "More:", "", *pages, ""])


def readme(root: Path = ROOT) -> str:
    return (root / "docs" / "readme" / "head.md").read_text(encoding="utf-8") + "\n" + contents(root)


EXAMPLE_HEADER = """\
# dp.toml — the project file of dp (Diverse Person). Copy it to ./dp.toml (or pass --config PATH,
# env DP_CONFIG) and keep the tables you need. One table per command; every key is optional.
# Precedence: command-line flag > environment variable > this file > built-in default.
# Relative paths resolve against this file's folder. Keys shown uncommented carry their default
# value; commented keys are examples, or have no default or one computed at run time (the comment
# says which). Unknown keys are errors ("did you mean").
# This file is assembled from docs/toml/<table>.toml (a test checks they agree).

"""


def example_config(root: Path = ROOT) -> str:
    """dp.toml.example: the header, then docs/toml/<table>.toml for every table in registry order."""
    return EXAMPLE_HEADER + "".join((root / "docs" / "toml" / f"{t}.toml").read_text(encoding="utf-8") + "\n"
                                    for t in registry.tables())


TARGETS = {"readme": ("README.md", readme), "example-config": ("dp.toml.example", example_config)}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TARGETS:
        print(f"usage: python -m dp_cli.docs_build {'|'.join(TARGETS)}", file=sys.stderr)
        return 2
    name, build = TARGETS[argv[0]]
    path = ROOT / name
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(build(), encoding="utf-8")
    tmp.replace(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
