"""Load a dataset into Examples, collecting every problem (file, line, key) on the way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from slmtune.data.formats import FORMATS, detect_format, validate
from slmtune.data.readers import read_records
from slmtune.data.types import Example
from slmtune.errors import DataError, Problem, SlmtuneError

FORMAT_NAMES = ("auto", *FORMATS)


@dataclass
class LoadResult:
    examples: list[Example] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    format: str = "auto"
    n_records: int = 0
    dropped: int = 0  # invalid records skipped (with skip_invalid)


def iter_examples(
    path: str | Path, fmt: str = "auto", *, require_answer: bool = True
) -> Iterator[tuple[str, Example | Problem]]:
    """Stream (source, Example) or (source, Problem); with fmt=auto each record's shape decides."""
    if fmt not in FORMAT_NAMES:
        raise SlmtuneError(f"--format '{fmt}' is unknown: use one of {', '.join(FORMAT_NAMES)}")
    for file, where, item in read_records(path):
        source = f"{file}:{where}"
        if isinstance(item, Problem):
            yield source, item
            continue
        name = fmt if fmt != "auto" else detect_format(item)
        if name is None:
            keys = ", ".join(sorted(item)) or "none"
            yield (
                source,
                Problem(
                    file,
                    where,
                    None,
                    f"unknown record shape (keys: {keys}); expected "
                    "alpaca (instruction/output), sharegpt (conversations) or messages",
                ),
            )
            continue
        messages, issues = FORMATS[name](item)
        issues += validate(messages, require_answer) if not issues else []
        if issues:
            for key, msg in issues:
                yield source, Problem(file, where, key, msg)
            continue
        meta = {k: v for k, v in item.items() if k not in _FORMAT_KEYS}
        meta["_format"] = name
        yield source, Example(messages, source=source, meta=meta)


_FORMAT_KEYS = {
    "system",
    "instruction",
    "input",
    "output",
    "history",
    "conversations",
    "conversation",
    "messages",
}


def load_examples(
    path: str | Path,
    fmt: str = "auto",
    *,
    skip_invalid: bool = False,
    require_answer: bool = True,
    max_problems: int = 50,
) -> LoadResult:
    """All valid examples; raises DataError listing every problem unless skip_invalid."""
    result = LoadResult()
    bad_sources: set[str] = set()
    for source, item in iter_examples(path, fmt, require_answer=require_answer):
        if isinstance(item, Problem):
            result.problems.append(item)
            bad_sources.add(source)
        else:
            result.examples.append(item)
    result.n_records = len(result.examples) + len(bad_sources)
    found = sorted({e.meta.pop("_format") for e in result.examples})
    result.format = "+".join(found) if found else fmt
    if result.problems and not skip_invalid:
        raise DataError(
            result.problems,
            limit=max_problems,
            hint=f"fix them, or pass --skip-invalid to use the {len(result.examples)} valid records",
        )
    if not result.examples:
        raise DataError(
            result.problems or [Problem(str(path), "file", None, "no records")],
            hint="no valid records to use",
        )
    result.dropped = len(bad_sources)
    return result
