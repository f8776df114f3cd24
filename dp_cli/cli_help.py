"""`--help` of dp and of every command: Typer's look (usage, help text, panels of options and commands),
laid out so that every option name stays whole at 80 columns, with one metavar style.

Typer's own panel puts all names of an option on one line ("--max-reference-attributes,--max-reference-
attribute-num") and lets rich shorten that column first ("--gradient-accumul…"). Here each name has its
own line in a column that is never shortened: the help text wraps instead. Metavars follow one policy
(`metavar`): PATH, TEXT, INT, FLOAT or the choices, nothing for switches, and an explicit metavar as given.
The app applies these classes to every command it registers (dp_cli/app.py), so command modules need
nothing for it.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from rich.console import Console, Group
from rich.highlighter import RegexHighlighter
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.theme import Theme
from typer import BadParameter
from typer.core import TyperCommand, TyperGroup

# Typer's type label (what its `display_type` shows as <label>) -> dp's metavar
_METAVARS = {"str": "TEXT", "int": "INT", "float": "FLOAT", "path": "PATH", "bool": "BOOL"}


class _Highlighter(RegexHighlighter):
    """Options and switches in help texts, as Typer highlights them."""

    base_style = "help."
    highlights = [r"(^|\W)(?P<switch>\-\w+)(?![a-zA-Z0-9])", r"(^|\W)(?P<option>\-\-[\w\-]+)(?![a-zA-Z0-9])"]


_HIGHLIGHT = _Highlighter()
_THEME = Theme({"help.option": "bold cyan", "help.switch": "bold green"})


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Let the app end quietly with its own status (rich would exit 1 here)."""
        raise BrokenPipeError


def metavar(param: Any, ctx: Any) -> str:
    """What an option's value looks like in --help: nothing for a switch, else the explicit metavar, else
    PATH / TEXT / INT / FLOAT / the choices (a|b|c), with '...' when it takes several values at once (an
    option given once per value says "repeat" in its help instead: `--seed 0 1` would not work)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return param.metavar
    try:
        label = str(param.display_type(ctx)).strip("<>")
    except (AttributeError, TypeError):  # a plain click parameter
        label = getattr(getattr(param, "type", None), "name", "text")
    label = label[5:-1] if label.startswith("list[") else label  # a repeated option: '...' says so
    shown = _METAVARS.get(label.lower(), label if "|" in label else label.upper())
    return shown + ("..." if getattr(param, "nargs", 1) != 1 else "")


def render_help(command: Any, ctx: Any) -> None:
    """Print the help of `command` (a TyperCommand or TyperGroup) to stdout."""
    width = os.environ.get("TERMINAL_WIDTH")  # as Typer: else COLUMNS or the terminal's width
    console = _Console(theme=_THEME, width=int(width) if width and width.isdigit() else None)
    console.print(Padding(Text(command.get_usage(ctx), style="bold"), 1))
    if command.help:
        console.print(Padding(_help_text(command.help), (0, 1, 1, 1)))
    panels: dict[str, list] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        default = "Arguments" if param.param_type_name == "argument" else "Options"
        panels.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(param)
    for name in sorted(panels, key=lambda n: (n != "Arguments", n != "Options")):
        console.print(Panel(_params_table(panels[name], ctx), title=name, title_align="left", border_style="dim"))
    if isinstance(command, TyperGroup):
        rows = [(n, command.get_command(ctx, n)) for n in command.list_commands(ctx)]
        rows = [(n, c) for n, c in rows if c is not None and not c.hidden]
        if rows:
            console.print(Panel(_commands_table(rows), title="Commands", title_align="left", border_style="dim"))
    if command.epilog:
        console.print(Padding(_markup(command.epilog), 1))


def _markup(text: str, style: str = "") -> Text:
    """Help text as Typer's rich markup mode reads it (`\\[` is a literal bracket)."""
    return _HIGHLIGHT(Text.from_markup(inspect.cleandoc(text), style=style))


def _help_text(help_text: str) -> Group:
    """The first paragraph as one line, the rest dimmed, line breaks kept (Typer's rendering)."""
    text = inspect.cleandoc(help_text).partition("\f")[0]
    first, *rest = text.split("\n\n")
    parts = [_markup(first.replace("\n", " ").strip())]
    if rest:
        parts += [Text(""), _markup("\n\n".join(rest), style="dim")]
    return Group(*parts)


def _params_table(params: list, ctx: Any) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1), expand=True)
    required = any(p.required for p in params)
    if required:
        table.add_column(no_wrap=True, style="red")
    table.add_column(no_wrap=True)  # the names: never shortened
    table.add_column(no_wrap=True, style="bold green")  # short names
    table.add_column(no_wrap=True, style="bold yellow")  # metavar
    table.add_column(ratio=1, overflow="fold")  # the help wraps instead (a long word folds)
    for p in params:
        longs = [o for o in p.opts if o.startswith("--")]
        shorts = [o for o in p.opts if not o.startswith("--")]
        names = Text()
        if p.param_type_name == "argument":
            names.append(p.name.upper(), style="bold cyan")
            shorts = []
        for i, opt in enumerate(longs + list(p.secondary_opts)):
            names.append(("\n" if i else "") + opt, style="bold cyan" if opt in longs else "bold magenta")
        row = [names, Text(",".join(shorts)), Text(metavar(p, ctx)), _param_help(p, ctx)]
        table.add_row(*(["*" if p.required else ""] if required else []), *row)
    return table


def _param_help(param: Any, ctx: Any) -> Text:
    """The option's help, then its variable (when shown), default (when shown) and [required]."""
    out = _markup(" ".join(p.replace("\n", " ").strip() for p in (param.help or "").split("\n\n")))
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", False):
        out.append(f" [env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}]", style="dim yellow")
    show_default = getattr(param, "show_default", False)
    if isinstance(show_default, str):
        out.append(f" [default: {show_default}]", style="dim")
    elif show_default and param.default is not None and not callable(param.default):
        out.append(f" [default: {param.default}]", style="dim")
    if param.required:
        out.append(" [required]", style="dim red")
    return out


def _commands_table(rows: list) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, style="bold cyan")
    table.add_column(ratio=1, overflow="fold")
    for name, cmd in rows:
        text = cmd.short_help or inspect.cleandoc(cmd.help or "").split("\n\n")[0]
        table.add_row(name, _markup(" ".join(text.split())))
    return table


class HelpCommand(TyperCommand):
    """A command whose --help is `render_help`'s, and whose usage line names its arguments in capitals
    (`dp eval edits [OPTIONS] MANIFEST`, where Typer writes `{manifest}`)."""

    def format_help(self, ctx, formatter) -> None:
        render_help(self, ctx)

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        """Errors about an argument name it as the usage line does (`Missing argument 'MANIFEST'`)."""
        try:
            return super().parse_args(ctx, args)
        except BadParameter as exc:  # Typer's own copy of click's
            if exc.param is not None and exc.param.param_type_name == "argument" and exc.param_hint is None:
                exc.param_hint = f"'{(exc.param.metavar or exc.param.name).upper()}'"
            raise

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                pieces.extend(param.get_usage_pieces(ctx))
                continue
            name = (param.metavar or param.name).upper() + ("..." if param.nargs != 1 else "")
            pieces.append(name if param.required else f"[{name}]")
        return pieces


class HelpGroup(TyperGroup):
    """A command group whose --help is `render_help`'s."""

    def format_help(self, ctx, formatter) -> None:
        render_help(self, ctx)
