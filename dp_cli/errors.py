"""The one error family of dp. Domain code raises these; only the command layer renders them."""

from __future__ import annotations


class DpError(Exception):
    """A problem the user can fix; rendered as one line, exit code 1."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DpError):
    """The project file or the options are wrong; `problems` lists every one found."""

    def __init__(self, message: str, problems: list[str] | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return super().__str__()
        return f"{self.message}: " + "; ".join(self.problems)


class SettingsError(ConfigError):
    """Bad values of a table's keys (the project file itself was read fine), so the problems of several
    tables can be gathered into one report (`dp_cli.config.combined`)."""


class OptionError(SettingsError):
    """Bad values that all came from command-line options: a usage error, exit code 2 like click's own
    bad option values (the same values from the TOML file or the environment stay SettingsErrors, exit 1)."""

    exit_code = 2


class UsageError(DpError):
    """Options that contradict each other; exit code 2 like click's usage errors."""

    exit_code = 2


class DataError(DpError):
    """A dataset, manifest or image on disk is missing or malformed."""


class ModelError(DpError):
    """A model folder or hub id cannot be loaded, or is incomplete."""


class BackendError(DpError):
    """An LLM backend refused the run (bad key, unknown model, ...)."""


class TrainingError(DpError):
    """Training cannot go on (non-finite loss, ...)."""
