"""One config resolution for every command: flag > environment > TOML > default, into typed models.

Each command owns a pydantic section model (a subclass of `Section`) registered under its TOML table
name. `resolve_section` merges the sources, resolves relative paths (TOML paths against the TOML
file's folder), and reports every problem at once with table, key, bad value and a "did you mean".
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from dp_cli import registry
from dp_cli.errors import ConfigError, OptionError, SettingsError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_CONFIG = "dp.toml"
CONFIG_ENV = "DP_CONFIG"
FLAGS = "flags"  # the origin of values given as command-line options, in messages: "flags: [table] key: ..."

# TOML table -> its section model: "module:Class", imported lazily so `dp --help` stays instant (tests
# register a class of their own under a name of theirs).
SECTIONS: dict[str, "str | type[Section]"] = registry.tables()


class Section(BaseModel):
    """Base of every `[table]` model: unknown keys are errors; fields carry their own docs."""

    # defer_build: the validators are built when a table is first resolved, not when `dp --help` imports it
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), defer_build=True)


def env_var(model: type[Section], name: str) -> str | None:
    """The environment variable declared for a field (`Field(json_schema_extra={"env": ...})`)."""
    extra = model.model_fields[name].json_schema_extra
    return extra.get("env") if isinstance(extra, dict) else None


@dataclass
class ProjectFile:
    """The parsed TOML project file (possibly absent) and where it lives."""

    path: Path | None
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path else Path.cwd()


def load_project(path: str | os.PathLike | None, explicit: bool = False) -> ProjectFile:
    """Read the project file; a missing default file is fine, a missing explicit one is an error."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG
        explicit = explicit or CONFIG_ENV in os.environ
    path = Path(path)
    if not path.exists():
        if explicit:
            raise ConfigError(f"{path}: config file not found", hint="check --config / DP_CONFIG, or copy dp.toml.example")
        return ProjectFile(None)
    data = _read_toml(path)
    problems = []
    for key, value in data.items():
        if key not in SECTIONS and not isinstance(value, dict):
            problems.append(f"{key} = {value!r:.40}: a key outside any table (put it under its table, e.g. [toy])")
        elif key not in SECTIONS:
            problems.append(f"[{key}]: unknown table{_did_you_mean(key, SECTIONS)}")
        elif not isinstance(value, dict):
            problems.append(f"{key}: expected a table [{key}], got {type(value).__name__}")
        elif problems or any(k not in _known_keys(key) for k in value):
            # report unknown keys of every table together with unknown tables
            problems += [f"[{key}] {k}: unknown key{_did_you_mean(k, _known_keys(key))}"
                         for k in value if k not in _known_keys(key)]
    if problems:  # wrong types and bad values of the known keys are reported in the same message
        problems += [p for key, value in data.items() if key in SECTIONS and isinstance(value, dict)
                     for p in _value_problems(key, value)]
        raise ConfigError(f"{path}: invalid config", problems)
    return ProjectFile(path.resolve(), data)


def _read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; unreadable bytes, bad encoding and bad syntax are ConfigErrors naming the line."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                          hint="save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax at that line") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None


def _validate(model: type[T], values: dict[str, Any], where: str, origin: dict[str, str] | None = None) -> T:
    """`model.model_validate(values)`; a validator that trips over a value of an unexpected type (TypeError or
    AttributeError, which pydantic passes through) becomes a ConfigError naming that key and where it was set."""
    try:
        return model.model_validate(values)
    except (TypeError, AttributeError):
        bad = [k for k, v in values.items() if _trips(model, k, v)] or ["(section)"]
        wheres = [(origin or {}).get(k, where) for k in bad]
        raise _invalid([f"{w} {k}: wrong type of value (got {values.get(k)!r})" for w, k in zip(wheres, bad)],
                       wheres) from None


def _invalid(problems: list[str], origins: list[str]) -> SettingsError:
    """The error for `problems` found in values from `origins` (one per problem): an OptionError (exit 2)
    when every one came from a command-line option, else a SettingsError (exit 1)."""
    from_flags = bool(origins) and all(o.startswith(f"{FLAGS}:") for o in origins)
    return (OptionError if from_flags else SettingsError)("invalid settings", problems)


def combined(errors: list[SettingsError]) -> SettingsError:
    """One error for the problems of several tables, reported together: an OptionError (exit 2) only when
    each one is."""
    cls = OptionError if all(isinstance(e, OptionError) for e in errors) else SettingsError
    return cls("invalid settings", [p for e in errors for p in e.problems])


def _trips(model: type[Section], key: str, value: Any) -> bool:
    try:
        model.model_validate({key: value})
    except (TypeError, AttributeError):
        return True
    except ValidationError:
        return False
    return False


def _value_problems(table: str, values: dict[str, Any]) -> list[str]:
    """Wrong types / bad values of a table's known keys, checked on the TOML values alone."""
    model = section_model(table)
    known = {k: v for k, v in values.items() if k in model.model_fields}
    try:
        _validate(model, known, f"[{table}]")
    except ConfigError as exc:
        return exc.problems
    except ValidationError as exc:  # keep per-key errors; missing keys and whole-table checks come later
        return [_format_pydantic(f"[{table}]", err, known) for err in exc.errors()
                if err.get("loc") and err["loc"][0] in known and err.get("type") != "missing"]
    return []


def _known_keys(table: str) -> dict:
    return section_model(table).model_fields


def section_model(table: str) -> type[Section]:
    """The section model registered for a TOML table: a class, or "module:Class" imported on first use."""
    entry = SECTIONS[table]
    if isinstance(entry, type):
        return entry
    module, cls = entry.split(":")
    return getattr(importlib.import_module(module), cls)


T = TypeVar("T", bound=Section)


def resolve_section(model: type[T], table: str, project: ProjectFile, flags: dict[str, Any] | None = None) -> T:
    """Merge default < TOML < environment < flags into `model`; all problems reported together."""
    toml_values = dict(project.tables.get(table, {}))
    where = f"{project.path if project.path else FLAGS}: [{table}]"
    problems = [f"{where} {key}: unknown key{_did_you_mean(key, model.model_fields)}"
                for key in toml_values if key not in model.model_fields]
    origins = [where] * len(problems)
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}  # where each value came from, so a bad one is looked for in the right place
    for key, value in toml_values.items():
        if key in model.model_fields:
            merged[key], origin[key] = _resolve_paths(model, key, value, project.folder), where
    for name in model.model_fields:
        env = env_var(model, name)
        if env and os.environ.get(env) not in (None, ""):
            merged[name], origin[name] = os.environ[env], f"env {env}: [{table}]"
    for key, value in (flags or {}).items():
        if value is not None:
            merged[key], origin[key] = _resolve_paths(model, key, value, Path.cwd()), f"{FLAGS}: [{table}]"
    try:
        obj = _validate(model, merged, where, origin)
    except ValidationError as exc:
        # a check across keys (no loc) blames every value that was set
        everywhere = sorted(set(origin.values())) or [where]
        for err in exc.errors():
            found = origin.get(err["loc"][0], where) if err.get("loc") else None
            problems.append(_format_pydantic(found or where, err, merged))
            origins += [found] if found else everywhere
        obj = None
    if problems:
        raise _invalid(problems, origins)
    return obj


def _did_you_mean(key: str, choices) -> str:
    close = difflib.get_close_matches(key.replace("-", "_"), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_pydantic(where: str, err: dict, merged: dict) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "(section)"
    top = err.get("loc", ("",))[0] if err.get("loc") else None
    shown = merged.get(top, err.get("input")) if top is not None else err.get("input")
    msg = err.get("msg", "invalid value")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if top is None:  # a check across keys: its message names them; the whole table would be noise
        return f"{where}: {msg}"
    return f"{where} {loc}: {msg} (got {shown!r})"


def _is_path_type(tp: Any) -> bool:
    if tp is Path:
        return True
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType, list, tuple):
        return any(_is_path_type(a) for a in typing.get_args(tp) if a is not type(None))
    return False


def _resolve_paths(model: type[Section], key: str, value: Any, base: Path) -> Any:
    """Relative path values resolve against `base` (the TOML folder, or the cwd for flags)."""
    info = model.model_fields[key]
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if not (_is_path_type(info.annotation) or extra.get("path_or_hub")):
        return value

    def one(v: Any) -> Any:
        hub = extra.get("path_or_hub") and _looks_like_hub_id(v)
        if isinstance(v, (str, Path)) and str(v) not in ("", "-") and not hub:
            p = Path(os.path.expanduser(str(v)))
            p = p if p.is_absolute() else (base / p)
            return str(p) if isinstance(v, str) and extra.get("path_or_hub") else p
        return v

    return [one(v) for v in value] if isinstance(value, list) else one(value)


def _looks_like_hub_id(v: Any) -> bool:
    """Hub ids like 'org/name' stay as they are when no such local path exists."""
    from dp_models.loading import is_hub_id

    return is_hub_id(v) and not Path(str(v)).exists()


def one_of(value: str, choices, what: str = "", also: str = "") -> str:
    """A validator's body: `value` stripped and lower-cased when it is one of `choices` (or `also`, accepted
    but named apart, e.g. "auto"); else a ValueError listing them ("unknown <what>; use ...")."""
    value = value.strip().lower()
    if value != also and value not in choices:
        head = f"unknown {what}; " if what else ""
        raise ValueError(f"{head}use {f'{also} or ' if also else ''}one of {', '.join(choices)}")
    return value


def path_or_hub(**kwargs: Any) -> Any:
    """A `Field` for a model reference: a hub id, or a local folder resolved like other paths."""
    from pydantic import Field

    extra = dict(kwargs.pop("json_schema_extra", {}) or {})
    extra["path_or_hub"] = True
    return Field(json_schema_extra=extra, **kwargs)
