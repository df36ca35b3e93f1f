"""Dynamic batching: concurrent requests share one generate() call.

Requests wait in a bounded queue (full -> the API answers 503). One worker thread takes the
first waiting request, gathers more for up to `max_wait_ms` or until `max_batch` are there,
groups them by what must be equal within a generate() call (model/adapter, sampling
settings) and runs each group. Rows keep their own limits: a `RowWatcher` ends a row at a
stop token, its own `max_tokens` or one of its `stop` strings, and streams its text as it
grows. Constrained rows carry their own grammar.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria

from slmtune.data.types import Message
from slmtune.infer.constrain import compiled_grammar
from slmtune.infer.generate import GenerationConfig, generate_batch

JSON_OBJECT = {"type": "object"}  # response_format json_object without a run schema


class QueueFull(Exception):
    pass


@dataclass
class Job:
    served: object  # models.Served
    messages: list[Message]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    schema: dict | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future | None = None
    deltas: asyncio.Queue | None = None  # streaming: text pieces, then None

    def key(self) -> tuple:
        sampling = self.temperature > 0
        return (self.served.name, sampling, self.temperature if sampling else 0, self.top_p,
                self.seed if sampling else None)  # fmt: skip


@dataclass
class Result:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"


class Batcher:
    def __init__(self, pool, *, max_batch=32, max_wait_ms=20, max_queue=256, metrics=None):
        self.pool, self.max_batch, self.max_wait = pool, max_batch, max_wait_ms / 1000
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.metrics = metrics
        self.lock = threading.Lock()  # one generate() at a time on the shared model
        self.thread = threading.Thread(target=self._work, name="slmtune-batcher", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

    def _work(self) -> None:
        while True:
            batch = [self.queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            groups: dict[tuple, list[Job]] = {}
            for job in batch:
                groups.setdefault(job.key(), []).append(job)
            for jobs in groups.values():
                self._run_group(jobs)

    def _run_group(self, jobs: list[Job]) -> None:
        start = time.monotonic()
        try:
            results = self.run(jobs)
        except Exception as exc:  # answered as a 500 without details; logged by the app
            for job in jobs:
                _finish(job, exc)
            return
        for job, result in zip(jobs, results, strict=True):
            _finish(job, result)
        if self.metrics:
            tokens = sum(r.completion_tokens for r in results)
            self.metrics.batch(len(jobs), tokens, time.monotonic() - start)

    def run(self, jobs: list[Job]) -> list[Result]:
        """Generate for one group of compatible jobs (same model and sampling settings)."""
        first = jobs[0]
        view = first.served.view
        rows = [view.renderer.prompt_ids(job.messages)[0] for job in jobs]
        grammars = [compiled_grammar(view, j.schema) if j.schema else None for j in jobs]
        cfg = GenerationConfig(
            max_new_tokens=max(j.max_tokens for j in jobs),
            temperature=first.temperature,
            top_p=first.top_p,
        )
        watcher = RowWatcher(view, jobs)
        with self.lock, self.pool.active(first.served):
            if first.seed is not None:
                torch.manual_seed(first.seed)
            generate_batch(view, rows, cfg, grammars if any(grammars) else None, [watcher])
        return [
            Result(watcher.text(i), len(rows[i]), len(watcher.tokens[i]), watcher.reason[i])
            for i in range(len(jobs))
        ]


class RowWatcher(StoppingCriteria):
    """Per-row stopping and streaming, called by generate() after every new token."""

    def __init__(self, view, jobs: list[Job]):
        self.tok, self.jobs = view.tokenizer, jobs
        self.stops = set(view.renderer.stop_token_ids)
        self.turn_end = view.renderer.turn_end
        self.tokens: list[list[int]] = [[] for _ in jobs]
        self.reason: list[str] = ["length"] * len(jobs)
        self.done = [False] * len(jobs)
        self.sent = [0] * len(jobs)  # characters already streamed

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        for row, job in enumerate(self.jobs):
            if self.done[row]:
                continue
            token = int(input_ids[row, -1])
            if token in self.stops:
                self._end(row, "stop")
                continue
            self.tokens[row].append(token)
            text = self._decoded(row)
            cut = _first_stop(text, [*job.stop, self.turn_end] if self.turn_end else job.stop)
            if cut is not None:
                self._end(row, "stop", upto=cut)
            elif len(self.tokens[row]) >= job.max_tokens:
                self._end(row, "length")
            else:
                self._stream(row, text, hold_back=max((len(s) for s in job.stop), default=1))
        return torch.tensor(self.done, device=input_ids.device)

    def _decoded(self, row: int) -> str:
        return self.tok.decode(self.tokens[row], skip_special_tokens=True)

    def text(self, row: int) -> str:
        text = self._decoded(row)
        job = self.jobs[row]
        cut = _first_stop(text, [*job.stop, self.turn_end] if self.turn_end else job.stop)
        return (text if cut is None else text[:cut]).strip()

    def _end(self, row: int, reason: str, upto: int | None = None) -> None:
        self.done[row], self.reason[row] = True, reason
        self._stream(row, self.text(row) if upto is None else self._decoded(row)[:upto].strip())

    def _stream(self, row: int, text: str, hold_back: int = 0) -> None:
        """Send the new part of `text`, minus a tail that could still become a stop string
        or an incomplete character."""
        job = self.jobs[row]
        if job.deltas is None:
            return
        if not self.done[row]:
            text = text.lstrip()
            text = text[: len(text) - hold_back] if hold_back else text
            if text.endswith("\ufffd"):
                return
        if len(text) > self.sent[row]:
            piece, self.sent[row] = text[self.sent[row] :], len(text)
            job.loop.call_soon_threadsafe(job.deltas.put_nowait, piece)


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _finish(job: Job, outcome) -> None:
    def resolve():
        if job.future.done():
            return
        if isinstance(outcome, Exception):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)
        if job.deltas is not None:
            job.deltas.put_nowait(None)

    job.loop.call_soon_threadsafe(resolve)


def schema_for(served, response_format: dict | None) -> dict | None:
    """The JSON Schema a request's response_format asks for (None = free text)."""
    if not response_format or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        return spec.get("schema") or JSON_OBJECT
    return served.view.schema or JSON_OBJECT  # json_object: the run's schema if it has one
