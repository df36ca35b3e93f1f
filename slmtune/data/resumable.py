"""The output side of a long, crash-safe, resumable job (`extract`, `label`).

A job answers its input records one by one and appends one JSON line per record, *in input
order*, to one of its output files (extract: one file; label: the training file or the
rejects file). Each line is flushed before a line goes to another file, so after a kill -9
the complete lines of all files together are exactly the first N input records, whichever
file each went to: the job resumes at record N. A torn last line (died mid-write) is cut.

    OUT, OTHER...      the job's JSONL files
    OUT.state.json     what job this is (input, settings) and, at the end, its summary

A different job on the same output is refused rather than mixed in; `--overwrite` only
ever deletes files that a job of this command wrote (they have a state file).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from slmtune.errors import SlmtuneError


class ResumableOutput:
    """The output files of one job. `outputs`: (path, the flag that named it) pairs; the
    first path also names the state file."""

    def __init__(self, command: str, outputs: list[tuple[str, str]], job: dict):
        self.command, self.job = command, job
        self.paths = [Path(p) for p, _ in outputs]
        self.flags = [flag for _, flag in outputs]
        self.state_path = Path(f"{self.paths[0]}.state.json")
        self._files: list = []
        self._last: int | None = None  # the file written last: flushed before another one
        self.unsynced = 0

    # -- before any write ----------------------------------------------------------------

    def previous(self, overwrite: bool) -> dict | None:
        """The saved state of this same job (None for a new one). Checks only, writes
        nothing; refuses foreign files, with --overwrite too."""
        if not self.state_path.exists():
            for path, flag in zip(self.paths, self.flags, strict=True):
                if path.exists():
                    raise SlmtuneError(
                        f"{flag} {path} exists and was not written by `slmtune "
                        f"{self.command}`; choose another {flag} (nothing was changed)"
                    )
            return None
        if overwrite:
            return None
        previous = json.loads(self.state_path.read_text())
        if {k: v for k, v in previous.items() if k != "summary"} != self.job:
            flag, path = self.flags[0], self.paths[0]
            raise SlmtuneError(
                f"{flag} {path} belongs to another job (different input, model or settings); "
                f"pass --overwrite to start it over, or choose another {flag}"
            )
        return previous

    def done(self) -> int:
        """Records already answered: the complete lines of all files together."""
        return sum(_complete_lines(p, repair=False) for p in self.paths)

    # -- writing --------------------------------------------------------------------------

    def open(self, overwrite: bool) -> int:
        """Record the job, open the files for appending (cutting a torn last line); returns
        how many records they already hold (0 for a new job)."""
        if overwrite:
            for path in (*self.paths, self.state_path):
                path.unlink(missing_ok=True)
        self.write_state(self.job)
        done = sum(_complete_lines(p, repair=True) for p in self.paths)
        self._files = [p.open("ab") for p in self.paths]
        return done

    def write(self, lines: list[tuple[int, dict]]) -> None:
        """Append rows, in input order: (file index, row)."""
        for index, row in lines:
            if self._last is not None and self._last != index:
                self._files[self._last].flush()  # earlier records reach the OS first
            self._files[index].write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
            self._last = index
        if self._last is not None:
            self._files[self._last].flush()
        self.unsynced += len(lines)

    def sync(self) -> None:
        """fsync every file: the lines so far survive a power cut too, not only a kill."""
        for f in self._files:
            f.flush()
            os.fsync(f.fileno())
        self.unsynced = 0

    def close(self, summary: dict | None = None) -> None:
        self.sync()
        for f in self._files:
            f.close()
        self._files = []
        if summary is not None:
            self.write_state({**self.job, "summary": summary})

    def write_state(self, state: dict) -> None:
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        tmp.write_text(json.dumps(state, indent=2, ensure_ascii=False))
        os.replace(tmp, self.state_path)

    def rows(self, index: int = 0) -> Iterator[dict]:
        """Every row of one output file (e.g. to count a resumed job's failures)."""
        with self.paths[index].open("rb") as f:
            for line in f:
                yield json.loads(line)


def _complete_lines(out: Path, repair: bool) -> int:
    """Count the complete lines; with repair, cut a torn last one (died mid-write)."""
    if not out.exists():
        return 0
    size, lines, last_newline = 0, 0, 0
    with out.open("rb") as f:
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            if b"\n" in chunk:
                last_newline = size + chunk.rindex(b"\n") + 1
            size += len(chunk)
    if repair and last_newline < size:
        with out.open("r+b") as f:
            f.truncate(last_newline)
    return lines
