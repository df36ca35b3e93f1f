"""The one exception family of slmtune.

Library code raises these with *what* is wrong, *where* (file:line, record, key) and
*how* to fix it. The CLI prints the message and exits non-zero; users never see a
traceback for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


class SlmtuneError(Exception):
    """Base class: the message is meant for the user, as is."""


class ConfigError(SlmtuneError):
    """A flag or config key is missing, malformed or inconsistent."""


class ModelError(SlmtuneError):
    """A model reference cannot be resolved or loaded."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input record."""

    file: str
    where: str  # "line 12" or "record 3" or "row 5"
    key: str | None
    message: str

    def __str__(self) -> str:
        key = f" [{self.key}]" if self.key else ""
        return f"{self.file}:{self.where}{key}: {self.message}"


class DataError(SlmtuneError):
    """Input data has problems; carries all of them (up to a limit), not just the first."""

    def __init__(self, problems: list[Problem], hint: str = "", limit: int = 50):
        self.problems = problems
        lines = [str(p) for p in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"... and {len(problems) - limit} more problems")
        head = f"{len(problems)} problem(s) in the data:"
        msg = "\n".join([head, *("  " + line for line in lines)])
        if hint:
            msg += "\n" + hint
        super().__init__(msg)
