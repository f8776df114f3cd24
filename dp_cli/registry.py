"""The one registry of dp's commands and config tables, in pipeline order.

Everything that lists commands derives from `COMMANDS`: the app (`dp_cli/app.py`), the TOML tables
(`dp_cli/config.py`), README.md and dp.toml.example (`dp_cli/docs_build.py`, run by `make readme` and
`make example-config`) and the tests. Plain data, so that importing it costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A `dp` subcommand: `dp_cli.commands.<name>` exposes `command` (a function) or `app` (a Typer group);
    its settings are the `[<name>]` table of dp.toml, validated by `section` ("module:Class")."""

    name: str
    section: str

    @property
    def module(self) -> str:
        return f"dp_cli.commands.{self.name}"

    @property
    def page(self) -> str:
        """Its documentation page, relative to the repository root."""
        return f"docs/{self.name}.md"


COMMANDS: tuple[Command, ...] = (
    Command("toy", "dp_cli.toy.config:ToyConfig"),
    Command("segment", "dp_cli.segment.config:SegmentConfig"),
    Command("train", "dp_cli.train.config:TrainConfig"),
    Command("edit", "dp_cli.edit.config:EditConfig"),
    Command("annotate", "dp_cli.annotate.config:AnnotateConfig"),
    Command("export", "dp_cli.export.config:ExportConfig"),
    Command("eval", "dp_cli.eval.config:EvalConfig"),
    Command("baseline", "dp_cli.baseline.config:BaselineConfig"),
    Command("demo", "dp_cli.demo.config:DemoConfig"),
)

COMMANDS_BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}

# Tables that no one command owns: [data] is read by every command that takes a dataset.
SHARED_TABLES: dict[str, str] = {"data": "dp_cli.data.config:DataConfig"}


def tables() -> dict[str, str]:
    """TOML table -> "module:Class" of its model, in the order of dp.toml.example (shared tables first)."""
    return {**SHARED_TABLES, **{c.name: c.section for c in COMMANDS}}
