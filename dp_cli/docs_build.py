"""README.md and dp.toml.example, built from docs/ and the command registry (`make readme`,
`make example-config`; tests/docs and tests/config check that the files in the tree are these).

    python -m dp_cli.docs_build readme|example-config
"""

from __future__ import annotations

import sys
from pathlib import Path

from dp_cli import registry

ROOT = Path(__file__).resolve().parents[1]

# README.md: the intro, the demo, every other command in pipeline order, then the pages about results.
README_HEAD = ("00-intro", "demo")
README_TAIL = ("toy-model", "results")


def readme_sections() -> list[str]:
    """The docs/readme/<name>.md sections of README.md, in order."""
    commands = [c.name for c in registry.COMMANDS if c.name not in README_HEAD]
    return [*README_HEAD, *commands, *README_TAIL]


def readme(root: Path = ROOT) -> str:
    return "".join((root / "docs" / "readme" / f"{s}.md").read_text(encoding="utf-8") + "\n"
                   for s in readme_sections())


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
