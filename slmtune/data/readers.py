"""File readers: each yields (where, raw record dict | Problem), streaming where possible.

`where` is "line N" (JSONL, 1-based), "record N" (JSON array, 1-based), "row N" (CSV: the
file's line number; Parquet: 1-based row). One bad line never stops the rest of a file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from slmtune.errors import Problem, SlmtuneError

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
JSON_COLUMNS = ("history", "conversations", "conversation", "messages")  # JSON text in CSV cells

Item = tuple[str, "dict | Problem"]


TOO_DEEP = "JSON nested too deeply to read (over ~1000 levels)"


def read_records(path: str | Path) -> Iterator[tuple[str, str, dict | Problem]]:
    """Yield (file, where, record-or-problem) for a file or every data file of a directory."""
    path = Path(path)
    if not path.exists():
        raise SlmtuneError(f"{path}: no such file or directory")
    files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise SlmtuneError(f"{path}: directory holds no {', '.join(SUFFIXES)} files")
    for file in files:
        reader = READERS.get(file.suffix)
        if reader is None:
            raise SlmtuneError(f"{file}: unsupported file type; use one of {', '.join(SUFFIXES)}")
        for where, item in reader(file):
            yield str(file), where, item


def read_jsonl(path: Path) -> Iterator[Item]:
    with path.open("rb") as f:  # bytes, so one non-UTF-8 line is one problem, not a crash
        for n, raw in enumerate(f, start=1):
            where = f"line {n}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    where,
                    Problem(
                        str(path),
                        where,
                        None,
                        f"not valid UTF-8 (byte {e.start}); re-save the file as UTF-8",
                    ),
                )
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield (
                    where,
                    Problem(str(path), where, None, f"broken JSON: {e.msg} at column {e.colno}"),
                )
                continue
            except RecursionError:  # the decoder's own depth limit
                yield where, Problem(str(path), where, None, TOO_DEEP)
                continue
            if not isinstance(obj, dict):
                yield (
                    where,
                    Problem(
                        str(path), where, None, f"expected a JSON object, got {type(obj).__name__}"
                    ),
                )
                continue
            yield where, obj


def _read_text(path: Path, encoding: str):
    """The whole file as text, or None after yielding a problem (for whole-file formats)."""
    try:
        return path.read_bytes().decode(encoding)
    except UnicodeDecodeError as e:
        msg = "not valid UTF-8; re-save the file as UTF-8"
        yield "file", Problem(str(path), f"byte {e.start}", None, msg)
        return None


def read_json(path: Path) -> Iterator[Item]:
    text = yield from _read_text(path, "utf-8")
    if text is None:
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        yield (
            f"line {e.lineno}",
            Problem(
                str(path), f"line {e.lineno}", None, f"broken JSON: {e.msg} at column {e.colno}"
            ),
        )
        return
    except RecursionError:
        yield "file", Problem(str(path), "file", None, TOO_DEEP)
        return
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        yield (
            "file",
            Problem(
                str(path), "file", None, 'expected a JSON array of records (or {"data": [...]})'
            ),
        )
        return
    for n, obj in enumerate(data, start=1):
        where = f"record {n}"
        if isinstance(obj, dict):
            yield where, obj
        else:
            yield (
                where,
                Problem(
                    str(path), where, None, f"expected a JSON object, got {type(obj).__name__}"
                ),
            )


def read_csv(path: Path) -> Iterator[Item]:
    # Streamed row by row; undecodable bytes are kept as surrogates so one bad row is one
    # problem, not the end of the file.
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.DictReader(f)
        for row in reader:
            where = f"row {reader.line_num}"
            yield where, _csv_record(path, where, row)


def _csv_record(path: Path, where: str, row: dict) -> dict | Problem:
    record = {k: (v if v is not None else "") for k, v in row.items() if k is not None}
    for key, value in record.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Problem(str(path), where, key, "not valid UTF-8; re-save the file as UTF-8")
    for key in JSON_COLUMNS:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            try:
                record[key] = json.loads(value)
            except json.JSONDecodeError as e:
                return Problem(str(path), where, key, f"cell is not valid JSON: {e.msg}")
            except RecursionError:
                return Problem(str(path), where, key, TOO_DEEP)
        elif key in record and not value:
            del record[key]
    return record


def read_parquet(path: Path) -> Iterator[Item]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        yield "file", Problem(str(path), "file", None, f"cannot read Parquet: {e}")
        return
    n = 0
    for batch in table.iter_batches(batch_size=1024):
        for record in batch.to_pylist():
            n += 1
            yield f"row {n}", {k: v for k, v in record.items() if v is not None}


READERS = {".jsonl": read_jsonl, ".json": read_json, ".csv": read_csv, ".parquet": read_parquet}


def count_records(path: Path) -> int:
    """Number of records without holding the file in memory (for progress bars)."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    return sum(1 for _ in read_records(path))
