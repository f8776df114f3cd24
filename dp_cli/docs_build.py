"""README.md and dp.toml.example, built from docs/ and the command registry (`make readme`,
`make example-config`; tests/docs and tests/config check that the files in the tree are these).

    python -m dp_cli.docs_build readme|example-config
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import textwrap
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
# This file is generated from the settings' descriptions in the code (`make example-config`).

"""
WIDTH = 105  # of a comment line


def example_config() -> str:
    """dp.toml.example: the header, then every table in registry order, written from its section model."""
    from dp_cli.config import section_model

    return EXAMPLE_HEADER + "".join(table_toml(t, section_model(t)) + "\n" for t in registry.tables())


def table_toml(table: str, model=None) -> str:
    """One table of dp.toml.example: the model's docstring, then each field's description (and environment
    variable) above `key = default` and `# key = example` lines. The default is commented where it is relative
    to the working folder, or where an example follows: any one commented line can be uncommented as is."""
    from dp_cli.config import env_var, section_model

    model = model or section_model(table)
    lines = [f"# {line}".rstrip() for line in inspect.cleandoc(model.__doc__ or "").splitlines()] + [f"[{table}]"]
    for name, field in model.model_fields.items():
        env = env_var(model, name)
        text = (field.description or "") + (f"; env {env}" if env else "")
        lines += [f"# {line}" for line in textwrap.wrap(text, WIDTH - 2, break_on_hyphens=False)]
        default = field.get_default(call_default_factory=True)
        if isinstance(default, Path) and not default.is_absolute():  # here it would resolve against this file
            lines.append(f"# {name} = {toml_value(default)}   # the default, in the folder dp runs in")
        elif default is not None and field.examples:  # uncommenting an example must not repeat the key
            lines.append(f"# {name} = {toml_value(default)}   # the default")
        elif default is not None:
            lines.append(f"{name} = {toml_value(default)}")
        lines += [f"# {name} = {toml_value(v)}" for v in field.examples or ()]
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    """`value` written as TOML (strings, paths, numbers, booleans, lists and tables of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    return json.dumps(str(value), ensure_ascii=False)


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
