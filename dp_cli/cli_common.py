"""Helpers shared by the command modules: error rendering and config resolution from flags."""

from __future__ import annotations

import functools
import traceback
from typing import Any, Callable, TypeVar

import typer
from pydantic import ValidationError

from dp_cli import console
from dp_cli.config import Section, load_project, resolve_section
from dp_cli.errors import DpError

F = TypeVar("F", bound=Callable[..., Any])


def dp_command(fn: F) -> F:
    """Render DpError / pydantic errors as one line on stderr and exit 1 (2 for usage errors)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DpError as exc:
            if console.STATE.verbose:
                console.err_console().print(console.scrub(traceback.format_exc()))
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except ValidationError as exc:  # a model built in code from user values (not via settings())
            if console.STATE.verbose:
                console.err_console().print(console.scrub(traceback.format_exc()))
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or exc.title}: {e['msg']} (got {e.get('input')!r})"
                                 for e in exc.errors())
            console.error(f"invalid settings for {exc.title}: {problems}")
            raise typer.Exit(1) from None
        except OSError as exc:  # a path the user gave cannot be read or written (a folder, permissions, ...)
            if console.STATE.verbose:
                console.err_console().print(console.scrub(traceback.format_exc()))
            console.error(_os_message(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            console.error("interrupted; finished work is kept, rerun the same command to resume")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _os_message(exc: OSError) -> str:
    """One line for an OSError: the file, the system's reason, and what to check."""
    where = exc.filename if exc.filename is not None else ""
    reason = exc.strerror or str(exc)
    hint = "check that path and its permissions, or give another"
    return f"{where}: {reason} ({hint})" if where else f"{reason} ({hint.replace('that path', 'the paths')})"


S = TypeVar("S", bound=Section)


def settings(model: type[S], table: str, /, **flags: Any) -> S:
    """Resolve a command's section from the project file (global --config) and its flags."""
    project = load_project(console.STATE.config, explicit=console.STATE.config is not None)
    return resolve_section(model, table, project, flags)


def with_data_table(cfg: S, *keys: str) -> S:
    """`cfg` with its unset `keys` (dataset, catalog) taken from the shared [data] table (env DP_DATASET)."""
    unset = [k for k in keys if getattr(cfg, k) is None]
    if not unset:
        return cfg
    from dp_cli.data.config import DataConfig

    data = settings(DataConfig, "data")
    update = {k: getattr(data, k) for k in unset if getattr(data, k) is not None}
    return cfg.model_copy(update=update) if update else cfg
