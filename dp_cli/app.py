"""The `dp` Typer app: global options and the one registry of commands."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import warnings
from typing import Annotated, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from dp_cli import __version__, console, registry
from dp_cli.cli_common import end_on_broken_pipe
from dp_cli.cli_help import HelpCommand, HelpGroup
from dp_cli.config import CONFIG_ENV
from dp_cli.distributed import die_with_launcher

# Command name -> module exposing `command` (a function) or `app` (a Typer group), from the one registry
# (dp_cli/registry.py), in pipeline order; `dp --help` lists them in this order.
COMMANDS: dict[str, str] = {c.name: c.module for c in registry.COMMANDS}

class _PipelineOrder(HelpGroup):
    """Lists the commands in COMMANDS order (Typer would put command groups such as segment last)."""

    def list_commands(self, ctx) -> list[str]:
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: list(COMMANDS).index(n) if n in COMMANDS else len(COMMANDS))

    # stdout's reader went away (`dp annotate -o - | head`, `dp train --help | head -1`): end quietly with
    # the status of a program ended by SIGPIPE, as standard tools do, instead of an error line
    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except BrokenPipeError:  # while printing `dp --help`
            raise typer.Exit(end_on_broken_pipe()) from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # while a command or a command's --help writes to stdout
            raise typer.Exit(end_on_broken_pipe()) from None

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        """Usage errors (unknown option, bad option value) as one line on stderr like dp's own errors, exit 2."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as exc:  # click's ClickException family, raised as is without standalone mode
            ctx = getattr(exc, "ctx", None)
            if not exc.format_message().strip() and ctx is not None:  # no arguments: the help, as usual
                typer.echo(ctx.get_help())
                sys.exit(getattr(exc, "exit_code", 2))
            hint = f" (try '{ctx.command_path} -h')" if ctx is not None else ""
            typer.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    name="dp",
    cls=_PipelineOrder,
    help="Diverse Person: grow text-based person search datasets by editing people with reference "
         "attribute images and rewriting their descriptions with an LLM.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=True,  # --install-completion / --show-completion for the shell dp runs in (detected)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dp {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    config: Annotated[Optional[str], typer.Option(
        "--config", "-c", envvar=CONFIG_ENV, metavar="PATH",
        help="Project file (TOML). Default: ./dp.toml when it exists.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summaries on stderr.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail; tracebacks on errors.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable summary on stdout.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Diverse Person: train, edit, annotate, export and evaluate grown TBPS datasets."""
    if quiet and verbose:
        raise typer.BadParameter("--quiet and --verbose contradict each other: give one", param_hint="'--quiet'")
    console.STATE = console.AppState(config=config, quiet=quiet, verbose=verbose, json=json_out)
    logging.getLogger("dp").setLevel(logging.DEBUG if verbose else logging.NOTSET)  # libraries ask it (dp_models)
    if not verbose:  # library download/save bars and warnings would clutter dp's own progress on stderr
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
        # deprecation notes that the libraries raise about each other (not about the user's input)
        warnings.filterwarnings("ignore", module=r"(huggingface_hub|diffusers|transformers|accelerate|torch)(\.|$)")


def _register() -> None:
    for name, module_path in COMMANDS.items():
        module = importlib.import_module(module_path)
        if hasattr(module, "app"):
            _help_classes(module.app)
            app.add_typer(module.app, name=name, short_help=_one_line(module.app.info.help))
        else:
            app.command(name, cls=HelpCommand, short_help=_one_line(module.command.__doc__))(module.command)


def _help_classes(group: typer.Typer) -> None:
    """dp's --help layout (dp_cli/cli_help.py) for a command group and everything registered in it (a
    class of the module's own is kept)."""
    if not isinstance(group.info.cls, type) or group.info.cls is TyperGroup:  # unset: Typer's placeholder
        group.info.cls = HelpGroup
    for info in group.registered_commands:
        if not isinstance(info.cls, type) or info.cls is TyperCommand:
            info.cls = HelpCommand
    for sub in group.registered_groups:
        _help_classes(sub.typer_instance)


def _one_line(text: str | None) -> str:
    """The first sentence of a help text, on one line (for the command list of `dp --help`)."""
    flat = " ".join((text or "").split())
    end = flat.find(". ")
    return flat if end < 0 else flat[:end + 1]


_register()


def main() -> None:
    """Console-script entry point."""
    die_with_launcher()
    try:
        app()
    except BrokenPipeError:  # stdout closed while dp itself wrote (an error's usage line, ...)
        sys.exit(end_on_broken_pipe())
