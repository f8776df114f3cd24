"""Helpers shared by the command modules: error rendering and config resolution from flags."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import os
import signal
import sys
import threading
import traceback
from typing import Annotated, Any, Callable, Iterator, TypeVar, get_args

import typer
from pydantic import ValidationError

from dp_cli import console
from dp_cli.config import Section, env_var, load_project, resolve_section
from dp_cli.errors import DpError, UsageError

F = TypeVar("F", bound=Callable[..., Any])


def dp_command(fn: F) -> F:
    """Render DpError / pydantic errors as one line on stderr and exit 1 (2 for usage errors)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with terminate_as_interrupt():
                return fn(*args, **kwargs)
        except DpError as exc:
            _traceback()
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except ValidationError as exc:  # a model built in code from user values (not via settings())
            _traceback()
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or exc.title}: {e['msg']} (got {e.get('input')!r})"
                                 for e in exc.errors())
            console.error(f"invalid settings for {exc.title}: {problems}")
            raise typer.Exit(1) from None
        except BrokenPipeError:  # not a path problem: the app ends quietly (app._PipelineOrder)
            raise
        except KeyboardInterrupt as exc:
            _interrupted(fn, exc)
        except Exception as exc:
            cause = _interrupt_behind(exc)
            if cause is not None:  # e.g. DataLoader workers killed by the same SIGTERM while it was handled
                _traceback()  # --verbose shows what failed on the way out
                _interrupted(fn, cause)
            if not isinstance(exc, OSError):
                raise
            _traceback()  # a path the user gave cannot be read or written (a folder, permissions, ...)
            console.error(_os_message(exc))
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _interrupted(fn: Callable[..., Any], exc: KeyboardInterrupt) -> None:
    """One line (not one per process under torchrun) saying what the command kept; exit 130, 143 for SIGTERM."""
    if console.is_main_process():
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        module = fn.__module__.rsplit(".", 1)[-1]
        console.error(how + INTERRUPTED.get(f"{module}.{fn.__name__}", INTERRUPTED.get(module, INTERRUPTED[""])))
    raise typer.Exit(128 + signal.SIGTERM if isinstance(exc, Terminated) else 130) from None


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C / SIGTERM during whose handling `exc` was raised, if any (its context chain)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__context__ or exc.__cause__
    return None


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's preemption, `kill`), raised where Ctrl-C's KeyboardInterrupt would be, so
    that it ends a command the same orderly way: work in flight flushed, finished work kept, one line."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While a command runs in the main thread, SIGTERM raises Terminated (restored afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:  # None: a handler installed from C, which Python cannot put back; the default then
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


# What Ctrl-C (or SIGTERM) leaves, by command module (or module.function) (dp_cli.commands.<name>); "" for the others.
INTERRUPTED = {
    "": "; finished work is kept, rerun the same command to resume",
    "train": "; the checkpoints written so far are kept: rerun with --resume-from-checkpoint latest",
    "export": "; nothing was written (the export is put in place only when complete): rerun it",
    "toy": "; nothing was written (the world is put in place only when complete): rerun it",
    "segment.import_": "; a --out folder this run made was removed (an import redoes every map): rerun it",
}


def _traceback() -> None:
    """With --verbose, the traceback of the error being handled, as text (brackets are not rich markup)."""
    if console.STATE.verbose:
        console.err_console().print(console.scrub(traceback.format_exc()), markup=False, emoji=False)


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a program ended by SIGPIPE (`yes | head -1`)


def end_on_broken_pipe() -> int:
    """Point stdout at /dev/null, so that nothing more (nor Python's flush at exit) fails on the closed pipe,
    and return the exit status. What was already written and logged (files, stderr) stays as it is."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (a test runner's buffer)
        pass
    return EXIT_BROKEN_PIPE


def _os_message(exc: OSError) -> str:
    """One line for an OSError: the file, the system's reason, and what to check."""
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EEXIST and where and not os.path.isdir(where):  # makedirs met a file on the way
        reason = "is a file, where a folder is needed"
    elif exc.errno == errno.ENOTDIR:
        reason = "a part of this path is a file, not a folder"
    hint = "check that path and its permissions, or give another"
    return f"{where}: {reason} ({hint})" if where else f"{reason} ({hint.replace('that path', 'the paths')})"


S = TypeVar("S", bound=Section)


def settings(model: type[S], table: str, /, **flags: Any) -> S:
    """Resolve a command's section from the project file (global --config) and its flags."""
    project = load_project(console.STATE.config, explicit=console.STATE.config is not None)
    return resolve_section(model, table, project, flags)


def setting_option(model: type[Section], name: str, *param_decls: str, **kwargs: Any) -> Any:
    """The `typer.Option` of the setting `name` of `model`, said once: its help is the field's description,
    then the environment variable and the default. dp_cli.config reads the variable (Typer does not), so an
    error names where a bad value came from."""
    field = model.model_fields[name]
    text = (field.description or "").replace("[", "\\[")  # brackets are text, not rich markup
    env = env_var(model, name)
    if env:
        text += f" \\[env var: {env}]"
    default = field.get_default(call_default_factory=True)
    if default not in (None, "", [], {}):
        kwargs.setdefault("show_default", _shown(default, name, param_decls))
    return typer.Option(*param_decls, help=text, **kwargs)


def _shown(default: Any, name: str, param_decls: tuple[str, ...]) -> str:
    """The default as `--help` shows it; for a switch, the name of the side that is on by default."""
    if isinstance(default, bool):
        flag = f"--{name.replace('_', '-')}"
        on, off = next((d.split("/") for d in param_decls if "/" in d), (flag, f"--no-{flag[2:]}"))
        return on if default else off
    if isinstance(default, (list, tuple)):
        return ",".join(map(str, default))
    return str(default)


def with_data_table(cfg: S, *keys: str) -> S:
    """`cfg` with its unset `keys` (dataset, catalog) taken from the shared [data] table (env DP_DATASET)."""
    unset = [k for k in keys if getattr(cfg, k) is None]
    if not unset:
        return cfg
    from dp_cli.data.config import DataConfig

    data = settings(DataConfig, "data")
    update = {k: getattr(data, k) for k in unset if getattr(data, k) is not None}
    return cfg.model_copy(update=update) if update else cfg


def seed_aliases(aliases: dict[str, str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Accept other spellings of a command's options (`--pretrained_model_hf` for --pretrained-model) as hidden
    options: each alias becomes a hidden option of its parameter's type (a switch that turns a boolean on) whose
    value goes to that parameter; `--help` shows dp's names only. Alias and dp's option with different values
    is a usage error."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        slots = {f"alias__{alias.lstrip('-').lower()}": (alias, target) for alias, target in aliases.items()}
        hidden = []
        for slot, (alias, target) in slots.items():
            value_type, info = get_args(sig.parameters[target].annotation)  # Annotated[Optional[T], typer.Option]
            hidden.append(inspect.Parameter(slot, inspect.Parameter.KEYWORD_ONLY, default=None,
                                            annotation=Annotated[value_type, typer.Option(alias, hidden=True)]))
            slots[slot] = (alias, target, _option_name(target, info))

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            for slot, (alias, target, name) in slots.items():
                value = kwargs.pop(slot)
                if value is None:
                    continue
                if kwargs[target] is not None and kwargs[target] != value:
                    raise UsageError(f"{alias} (the seed's spelling of {name}) and {name} differ",
                                     hint="give one of them")
                kwargs[target] = value
            return fn(**kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *hidden])
        return wrapper

    return decorate


def _option_name(param: str, info: Any) -> str:
    """The first name of a typer.Option in Annotated (Typer keeps the first declaration in `default`)."""
    first = info.default if isinstance(info.default, str) and info.default.startswith("-") else None
    names = [first, *(info.param_decls or ())] if first else list(info.param_decls or ())
    return names[0] if names else f"--{param.replace('_', '-')}"
