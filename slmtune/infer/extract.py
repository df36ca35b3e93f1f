"""`slmtune extract`: run a fine-tuned extractor over a huge file, crash-safe and resumable.

The input is streamed (JSONL line by line, CSV row by row, Parquet by record batch) into
the engine's decode loop, read a window of a few batches at a time so each window's prompts
can go in shortest first; the loop keeps decoding across window boundaries (the next window
joins while the last one's answers are still running). Result lines are appended *in input
order* as soon as every record before them is answered, and fsynced every window. Every
input record yields exactly one output line, bad records included (with an error), so after
a kill -9 the output's complete lines say exactly how far the job got:

    OUT                one JSON line per record: line, id, output, error, truncated
    OUT.state.json     what job this is (input, run, settings) and, at the end, its summary

Rerunning the same command repairs a torn last line and continues after the last complete
record; a different job on the same output is refused rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from slmtune.config import ExtractConfig
from slmtune.data.readers import count_records, read_records
from slmtune.data.resumable import ResumableOutput
from slmtune.errors import Problem, SlmtuneError
from slmtune.infer.driver import requests_for
from slmtune.run import RunDir, decoding_schema, parse_json_answer
from slmtune.run.answer import spans, verbatim_paths

WINDOW_BATCHES = 4  # records read ahead = batch size × this: room to sort by length
NOT_THE_JOB = ("batch_size", "ray_address", "workers", "worker_cpus")  # speed, not answers


def extract(
    run: str,
    input_path: str,
    output: str,
    cfg: ExtractConfig | None = None,
    *,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict:
    """Answer every record of `input_path` with `run`; returns the job summary."""
    from tqdm.auto import tqdm

    from slmtune.infer.engines import open_engine

    cfg = cfg or ExtractConfig()
    if cfg.engine == "ray":
        from slmtune.infer.ray_extract import extract_on_ray

        job = job_identity(run, input_path, cfg)
        return extract_on_ray(run, input_path, output, cfg, job, limit=limit,
                              overwrite=overwrite, quiet=quiet)  # fmt: skip
    output_file = ResumableOutput(
        "extract", [(output, "--output")], job_identity(run, input_path, cfg)
    )
    previous = output_file.previous(overwrite)  # checks only, writes nothing
    total = count_records(Path(input_path))
    total = min(total, limit) if limit is not None else total
    done = output_file.done() if previous else 0
    if previous and done >= total:
        if not quiet:
            print(f"{output}: already complete ({done} records); nothing to do")
        return previous.get("summary") or {"records": done}

    engine = open_engine(
        cfg.engine, run, batch_size=cfg.batch_size
    )  # a bad run, engine or schema fails before any write
    schema = decoding_schema(engine.opened, cfg.schema_file, constrain=True)
    answers = Answers(schema is not None, verbatim_paths(schema))
    done = output_file.open(overwrite)
    records = islice(read_records(input_path), done, limit)
    stats: Counter = Counter()
    start = time.time()
    bar = tqdm(total=total, initial=done, desc="extract", unit="rec", disable=quiet)
    window = cfg.batch_size * WINDOW_BATCHES
    rows: deque[Pending] = deque()  # input order
    requests = _requests(engine, records, cfg, rows)

    def write_ready(sync: bool) -> None:
        ready = []
        while rows and rows[0].done:
            ready.append(rows.popleft().row)
        if ready:
            output_file.write([(0, counted(row, stats)) for row in ready])
            bar.update(len(ready))
            seconds = max(time.time() - start, 1e-9)
            bar.set_postfix(rec_s=f"{stats['records'] / seconds:.2f}", failed=stats["failed"])
        if output_file.unsynced and (sync or output_file.unsynced >= window):
            output_file.sync()

    for pending, gen in engine.answer_stream(requests, cfg.batch_size, window):
        fill_answer(pending.row, gen, answers, pending.text, stats)
        pending.done = True
        write_ready(sync=False)
    write_ready(sync=True)
    bar.close()
    whole_job = tally(output_file) if done else stats  # the whole job's failures, not this part
    summary = job_summary(stats, whole_job, time.time() - start, done, total)
    output_file.close(summary)
    if not quiet:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


# -- job identity -------------------------------------------------------------------------


def job_identity(run: str, input_path: str, cfg: ExtractConfig) -> dict:
    path = Path(input_path)
    if not path.is_file():
        raise SlmtuneError(f"--input {input_path}: no such file")
    stat = path.stat()
    return {
        "run": str(Path(run).resolve()),
        "input": str(path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "settings": cfg.model_dump(exclude=set(NOT_THE_JOB)),
        "schema_sha256": _schema_digest(run, cfg),  # its content: the same path may change
    }


def _schema_digest(run: str, cfg: ExtractConfig) -> str | None:
    """Hash of the schema file the answers are constrained by (--schema, else the run's)."""
    path = Path(cfg.schema_file) if cfg.schema_file else RunDir(run).schema
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # no schema (free-text run), or a --schema that fails later with a message
        return None


# -- answering ----------------------------------------------------------------------------


@dataclass
class Answers:
    """What an answer is: JSON (and which of its fields are copied from the input) or text."""

    json: bool
    verbatim: tuple  # verbatim_paths of the schema: their spans go into each row


@dataclass
class Pending:
    """A record's output row until it is written; `done` once answered (or unusable)."""

    row: dict
    text: str | None
    done: bool


def _requests(engine, records: Iterator, cfg: ExtractConfig, rows: deque) -> Iterator:
    """(pending, request) for each usable record, read lazily; every record's Pending
    (usable or not) joins `rows` in input order as it is read."""
    for _file, where, item in records:
        row, text = prepare_record(where, item, cfg)
        rows.append(Pending(row, text, done=text is None))
        if text is not None:
            yield rows[-1], requests_for(engine.opened, [text], cfg)[0]


def counted(row: dict, stats: Counter) -> dict:
    stats["records"] += 1
    if row["error"]:
        stats["failed"] += 1
        stats[f"error:{row['error']['kind']}"] += 1
    return row


def prepare_record(where: str, item, cfg: ExtractConfig) -> tuple[dict, str | None]:
    """The output row skeleton and the text to answer (None when the record is unusable)."""
    number = where.split()[-1]
    row = {
        "line": int(number) if number.isdigit() else None,
        "id": None,
        "output": None,
        "error": None,
    }
    if isinstance(item, Problem):
        row["error"] = {"kind": "bad_record", "message": item.message}
        return row, None
    row["id"] = item.get(cfg.id_field)
    text = item.get(cfg.text_field)
    if text is None:
        fields = ", ".join(item) or "none"
        message = f'no field "{cfg.text_field}" (fields: {fields}); pass --text-field'
        row["error"] = {"kind": "missing_field", "message": message}
        return row, None
    if isinstance(text, (dict, list)):
        message = f'field "{cfg.text_field}" is a {type(text).__name__}, not text'
        row["error"] = {"kind": "bad_record", "message": message}
        return row, None
    text = str(text)
    if not text.strip():
        row["error"] = {"kind": "empty_text", "message": f'field "{cfg.text_field}" is empty'}
        return row, None
    return row, text


def fill_answer(row: dict, gen, answers: Answers, text: str, stats: Counter) -> None:
    stats["prompt_tokens"] += gen.prompt_tokens
    stats["new_tokens"] += gen.new_tokens
    if gen.prompt_truncated:
        row["truncated"] = True
        stats["truncated"] += 1
    if gen.error is not None:
        row["error"] = {"kind": "generation_failed", "message": str(gen.error)}
        return
    if not answers.json:
        row["output"] = gen.text
        return
    obj, reason = parse_json_answer(gen.text)
    if obj is not None:
        row["output"] = obj
        if answers.verbatim:
            row["spans"] = spans(obj, text, answers.verbatim)
        return
    kind = "invalid_json" if gen.finished else "max_new_tokens"
    message = reason if gen.finished else "answer cut at --max-new-tokens before it ended"
    row["error"] = {"kind": kind, "message": message}
    row["raw"] = gen.text  # nothing is lost: the unparsable answer is kept


def tally(output_file: ResumableOutput) -> Counter:
    """Failures and truncations over every line of OUT (after a resume: the whole job)."""
    counts: Counter = Counter()
    for row in output_file.rows():
        counts["truncated"] += bool(row.get("truncated"))
        if row.get("error"):
            counts["failed"] += 1
            counts[f"error:{row['error']['kind']}"] += 1
    return counts


def job_summary(
    stats: Counter, whole: Counter, seconds: float, resumed_at: int, total: int
) -> dict:
    """`stats`: this invocation (speed, tokens); `whole`: failures of the whole job."""
    failures = {k.split(":", 1)[1]: v for k, v in sorted(whole.items()) if k.startswith("error:")}
    return {
        "records": total,
        "resumed_after": resumed_at,
        "answered_now": stats["records"],
        "failed": whole["failed"],
        "failures": failures,
        "truncated": whole["truncated"],
        "seconds": round(seconds, 2),
        "records_per_second": round(stats["records"] / max(seconds, 1e-9), 3),
        "new_tokens_per_second": round(stats["new_tokens"] / max(seconds, 1e-9), 2),
        "prompt_tokens": stats["prompt_tokens"],
        "new_tokens": stats["new_tokens"],
    }
