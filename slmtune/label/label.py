"""`slmtune label`: a big teacher model labels raw texts; the labels become training data.

    raw texts ─(--select: which are worth it)─▶ teacher (OpenAI-compatible, concurrent)
        ─▶ parse, validate against the schema, check verbatim values occur in the text
        ─▶ OUT (alpaca records for `slmtune train`) or REJECTS (with the reason)

The schema comes from --schema, else is learned from --example records, else from the
teacher's first LEARN_FROM answers (and is then saved as OUT.schema.json, where it can be
read, edited and passed back with --schema). Labelling is crash-safe and resumable exactly
like `extract` (data/resumable.py): every chosen record lands exactly once, in input order,
in OUT or in REJECTS; rerun the same command after a crash to continue.

    OUT                  {"system", "instruction": text, "output": JSON answer, "id"?}
    REJECTS              {"line", "id", "text", "reason", "message", "raw"}
    OUT.state.json       the job and, at the end, its summary
    OUT.schema.json      the schema the answers were checked against
    OUT.selection.json   --select: the chosen records (so a rerun labels the same ones)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter, deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from slmtune.config import LabelConfig
from slmtune.data.readers import count_records, read_records
from slmtune.data.resumable import ResumableOutput
from slmtune.errors import Problem, SlmtuneError
from slmtune.label.select import select
from slmtune.label.teacher import Reply, Teacher
from slmtune.run import infer_schema, load_schema

LEARN_FROM = 16  # no schema given: learned from the teacher's first answers
READ_AHEAD = 4  # records read ahead per concurrent request (room while one is slow)
SYNC_EVERY = 64  # records between fsyncs
NOT_THE_JOB = ("concurrency", "rpm", "timeout", "retries", "price_in", "price_out", "api_key_env")
LABELLED, REJECTED = 0, 1  # the two output files


def label(
    input_path: str,
    output: str,
    cfg: LabelConfig,
    *,
    rejects: str | None = None,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict:
    """Label the records of `input_path` (or the --select-ed ones); returns the summary."""
    rejects = rejects or str(Path(output).with_suffix("")) + ".rejects.jsonl"
    outputs = [(output, "--output"), (rejects, "--rejects")]
    files = ResumableOutput("label", outputs, _job_identity(input_path, cfg))
    previous = files.previous(overwrite)  # checks only, writes nothing
    schema = _given_schema(cfg) or (_saved_schema(output) if previous else None)
    chosen = _load_selection(output) if previous else None
    if cfg.select and chosen is None:
        chosen = _select(input_path, cfg)
    total = len(chosen) if chosen is not None else count_records(Path(input_path))
    total = min(total, limit) if limit is not None else total
    done = files.done() if previous else 0
    if previous and done >= total:
        if not quiet:
            print(f"{output}: already complete ({done} records); nothing to do")
        return previous.get("summary") or {"records": done}

    teacher = Teacher(cfg, schema)  # a missing API key fails here, before any write
    done = files.open(overwrite)
    if chosen is not None:
        _save_json(Path(f"{output}.selection.json"), {"positions": chosen})
    if schema is not None:
        _save_json(Path(f"{output}.schema.json"), schema)
    records = islice(_records(input_path, chosen), done, limit)
    job = Job(files, teacher, cfg, Path(output), Counter(), time.time())
    job.bar = _progress(total, done, quiet)
    asyncio.run(job.run(records))
    job.bar.close()
    summary = _summary(job, files, done, total)
    files.close(summary)
    if not quiet:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


# -- the job --------------------------------------------------------------------------------


@dataclass
class Pending:
    """A record until its row is written: the teacher's task, or None for an unusable one."""

    row: dict
    text: str | None
    task: asyncio.Task | None


@dataclass
class Job:
    files: ResumableOutput
    teacher: Teacher
    cfg: LabelConfig
    output: Path
    stats: Counter
    start: float
    bar: object = None

    async def run(self, records) -> None:
        """Ask for every record (at most --concurrency at once, the teacher's semaphore) and
        write the rows in input order as they are answered."""
        try:
            pending: deque[Pending] = deque()
            if self.teacher.schema is None:
                await self._learn_schema(records, pending)
            for where, item in records:
                pending.append(self._start(where, item))
                await self._write(pending, keep=READ_AHEAD * self.cfg.concurrency)
            await self._write(pending, keep=0)
        finally:
            await self.teacher.close()

    def _start(self, where: str, item) -> Pending:
        row, text = _prepare(where, item, self.cfg)
        task = asyncio.ensure_future(self.teacher.ask(text)) if text is not None else None
        return Pending(row, text, task)

    async def _learn_schema(self, records, pending: deque[Pending]) -> None:
        """No schema given: ask for the first LEARN_FROM records as plain JSON objects, learn
        the schema from the answers (types, required keys, verbatim fields), save it, then
        judge those answers and every later one by it."""
        pending.extend(self._start(where, item) for where, item in islice(records, LEARN_FROM))
        replies = [await p.task for p in pending if p.task is not None]
        texts = [p.text for p in pending if p.task is not None]
        answered = [(r, t) for r, t in zip(replies, texts, strict=True) if r.answer is not None]
        answers = [json.dumps(r.answer, ensure_ascii=False) for r, _ in answered]
        schema = infer_schema(answers, [t for _, t in answered]) if answered else None
        if schema is None:
            return  # no JSON object among them: answers are checked as JSON objects only
        _save_json(Path(f"{self.output}.schema.json"), schema)
        self.teacher.use_schema(schema)
        for reply, text in zip(replies, texts, strict=True):
            if reply.answer is not None:
                self.teacher.judge(reply, text)

    async def _write(self, pending: deque[Pending], keep: int) -> None:
        """Write the oldest rows until at most `keep` are left (waiting for their answers)."""
        while len(pending) > keep:
            item = pending.popleft()
            reply = await item.task if item.task is not None else None
            where, row = _finished(item, reply, self.cfg, self.stats)
            self.files.write([(where, row)])
            if self.files.unsynced >= SYNC_EVERY:
                self.files.sync()
            self.bar.update(1)
            self.bar.set_postfix(
                cost=f"{_cost(self.stats, self.cfg):.4f}", rejected=self.stats["rejected"]
            )


def _prepare(where: str, item, cfg: LabelConfig) -> tuple[dict, str | None]:
    """A reject row skeleton and the text to label (None when the record is unusable)."""
    number = where.split()[-1]
    row = {"line": int(number) if number.isdigit() else None, "id": None, "text": None}
    if isinstance(item, Problem):
        row.update(reason="bad_record", message=item.message)
        return row, None
    row["id"] = item.get(cfg.id_field)
    text = item.get(cfg.text_field)
    if text is None:
        fields = ", ".join(item) or "none"
        row.update(
            reason="missing_field",
            message=f'no field "{cfg.text_field}" (fields: {fields}); pass --text-field',
        )
        return row, None
    if isinstance(text, (dict, list)) or not str(text).strip():
        row.update(reason="bad_record", message=f'field "{cfg.text_field}" is empty or not text')
        return row, None
    row["text"] = str(text)
    return row, row["text"]


def _finished(
    item: Pending, reply: Reply | None, cfg: LabelConfig, stats: Counter
) -> tuple[int, dict]:
    """(which file, row) for a record."""
    row = item.row
    if reply is not None:
        stats["requests"] += reply.requests
        stats["tokens_in"] += reply.tokens_in
        stats["tokens_out"] += reply.tokens_out
        if reply.answer is not None:
            stats["labelled"] += 1
            labelled = {
                "system": cfg.system,
                "instruction": item.text,
                "output": json.dumps(reply.answer, ensure_ascii=False),
            }
            if row["id"] is not None:
                labelled["id"] = row["id"]
            return LABELLED, labelled
        row.update(reason=reply.reason, message=reply.message, raw=reply.raw)
    stats["rejected"] += 1
    stats[f"reason:{row['reason']}"] += 1
    return REJECTED, row


# -- schema, selection, identity ------------------------------------------------------------


def _given_schema(cfg: LabelConfig) -> dict | None:
    if cfg.schema_file:
        return load_schema(cfg.schema_file)
    if not cfg.example:
        return None
    from slmtune.data.load import load_examples
    from slmtune.data.types import last_user_text

    examples = load_examples(cfg.example).examples
    answers = [e.answer or "" for e in examples]
    schema = infer_schema(answers, [last_user_text(e.prompt_messages) or "" for e in examples])
    if schema is None:
        raise SlmtuneError(f"--example {cfg.example}: its answers are not JSON objects")
    return schema


def _saved_schema(output: str) -> dict | None:
    path = Path(f"{output}.schema.json")
    return json.loads(path.read_text()) if path.exists() else None


def _select(input_path: str, cfg: LabelConfig) -> list[int]:
    """Record numbers (0-based, among all records) chosen by --select from the usable ones."""
    positions, texts = [], []
    for n, (_file, where, item) in enumerate(read_records(input_path)):
        text = _prepare(where, item, cfg)[1]
        if text is not None:
            positions.append(n)
            texts.append(text)
    picked = select(
        cfg.select, texts, cfg.budget, cfg.seed, student=cfg.student, candidates=cfg.candidates
    )
    return [positions[i] for i in picked]


def _load_selection(output: str) -> list[int] | None:
    path = Path(f"{output}.selection.json")
    return json.loads(path.read_text())["positions"] if path.exists() else None


def _records(input_path: str, chosen: list[int] | None):
    """(where, record) of every record, or of the chosen ones, in input order."""
    wanted = set(chosen) if chosen is not None else None
    for n, (_file, where, item) in enumerate(read_records(input_path)):
        if wanted is None or n in wanted:
            yield where, item


def _job_identity(input_path: str, cfg: LabelConfig) -> dict:
    path = Path(input_path)
    if not path.is_file():
        raise SlmtuneError(f"--input {input_path}: no such file")
    stat = path.stat()
    given = cfg.schema_file or cfg.example
    return {
        "input": str(path.resolve()),
        "input_bytes": stat.st_size,
        "input_mtime_ns": stat.st_mtime_ns,
        "settings": cfg.model_dump(exclude=set(NOT_THE_JOB)),
        "schema_sha256": _digest(given) if given else None,
    }


def _digest(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:  # fails later with a message naming the flag
        return None


def _save_json(path: Path, value) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False))
    tmp.replace(path)


# -- reporting ------------------------------------------------------------------------------


def _progress(total: int, done: int, quiet: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, desc="label", unit="rec", disable=quiet)


def _cost(stats: Counter, cfg: LabelConfig) -> float:
    return (stats["tokens_in"] * cfg.price_in + stats["tokens_out"] * cfg.price_out) / 1e6


def _summary(job: Job, files: ResumableOutput, resumed_at: int, total: int) -> dict:
    """Counts over the whole job (both files); tokens, cost and speed of this invocation."""
    rejected = Counter(row["reason"] for row in files.rows(REJECTED))
    seconds = max(time.time() - job.start, 1e-9)
    answered = job.stats["labelled"] + job.stats["rejected"]
    return {
        "records": total,
        "resumed_after": resumed_at,
        "labelled": sum(1 for _ in files.rows(LABELLED)),
        "rejected": sum(rejected.values()),
        "rejected_by_reason": dict(sorted(rejected.items())),
        "answered_now": answered,
        "requests": job.stats["requests"],
        "tokens_in": job.stats["tokens_in"],
        "tokens_out": job.stats["tokens_out"],
        "cost": round(_cost(job.stats, job.cfg), 6),
        "seconds": round(seconds, 2),
        "records_per_second": round(answered / seconds, 3),
        "requests_per_second": round(job.stats["requests"] / seconds, 3),
        "output": str(files.paths[LABELLED]),
        "rejects": str(files.paths[REJECTED]),
    }
