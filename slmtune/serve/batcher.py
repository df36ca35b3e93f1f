"""Continuous batching for the server: requests join and leave the decode loop between steps.

Requests wait in a bounded queue (full -> the API answers 503). One worker thread owns the
model and a `DecodeLoop`: when idle it waits for a request and gathers more for up to
`max_wait_ms`; while decoding, it takes whatever is waiting (up to `max_batch` rows in
flight) before every step, so a new request starts within one step and a finished one
answers at once instead of waiting for the longest answer in its batch. Rows keep their own
limits, sampling settings, seed, grammar and adapter. A `RowWatcher` per request ends it at
one of its `stop` strings (or a textual turn end) and streams its text as it grows.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from slmtune.data.types import Message
from slmtune.infer.constrain import compiled_grammar
from slmtune.infer.decode import DecodeLoop, Row

JSON_OBJECT = {"type": "object"}  # response_format json_object without a run schema
log = logging.getLogger("slmtune.serve")


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
        self.decoder = DecodeLoop(pool.model, pool.pad_token_id)
        self.thread = threading.Thread(target=self._work, name="slmtune-batcher", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

    def _work(self) -> None:
        while True:
            jobs = self._waiting(idle=not self.decoder.rows)
            if jobs:
                self._admit(jobs)
            if self.decoder.rows:
                self._step()

    def _waiting(self, idle: bool) -> list[Job]:
        """Requests to start now: when idle, block for one and gather for max_wait."""
        room = self.max_batch - len(self.decoder.rows)
        jobs: list[Job] = []
        if idle:
            jobs.append(self.queue.get())
            deadline = time.monotonic() + self.max_wait
            while len(jobs) < room:
                try:
                    jobs.append(self.queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
        while len(jobs) < room:
            try:
                jobs.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _admit(self, jobs: list[Job]) -> None:
        rows = []
        for job in jobs:
            try:
                rows.append(_row(job))
            except Exception as exc:  # e.g. a template error: this request only
                _finish(job, exc)
        if not rows:
            return
        try:
            self._done(self.decoder.add(rows))
        except Exception as exc:  # answered as a 500 without details
            log.exception("prefill failed")
            for row in rows:
                _finish(row.tag.job, exc)

    def _step(self) -> None:
        start, size = time.monotonic(), len(self.decoder.rows)
        try:
            finished = self.decoder.step()
        except Exception as exc:
            log.exception("decoding step failed")
            for row in self.decoder.rows:
                _finish(row.tag.job, exc)
            self.decoder.clear()
            return
        self._done(finished)
        if self.metrics:
            self.metrics.step(size, time.monotonic() - start)

    def _done(self, rows: list[Row]) -> None:
        for row in rows:
            watcher = row.tag
            reason = watcher.end(row.finish)
            result = Result(watcher.text(), len(row.prompt), len(row.tokens), reason)
            _finish(watcher.job, result)


def _row(job: Job) -> Row:
    view = job.served.view
    watcher = RowWatcher(view, job)
    return Row(
        prompt=view.renderer.prompt_ids(job.messages)[0],
        max_new_tokens=job.max_tokens,
        stop_ids=frozenset(view.renderer.stop_token_ids),
        grammar=compiled_grammar(view, job.schema) if job.schema else None,
        temperature=job.temperature,
        top_p=job.top_p,
        seed=job.seed,
        adapter=job.served.adapter,
        on_token=watcher.feed,
        tag=watcher,
    )


class RowWatcher:
    """One request's text as it grows: its stop strings, its stream, its finish reason."""

    def __init__(self, view, job: Job):
        self.tok, self.job = view.tokenizer, job
        self.stops = [*job.stop, view.renderer.turn_end] if view.renderer.turn_end else job.stop
        self.hold_back = max((len(s) for s in job.stop), default=1)
        self.tokens: list[int] = []
        self.sent = 0  # characters already streamed
        self.cut = False  # ended by a stop string

    def feed(self, token: int) -> bool:
        """A new token; True = the answer is complete (stop string, or nobody waits)."""
        self.tokens.append(token)
        text = self._decoded()
        if _first_stop(text, self.stops) is not None:
            self.cut = True
            return True
        self._stream(text.lstrip(), final=False)
        return self.job.future.done()  # the client went away: free the row

    def end(self, finish: str) -> str:
        """The decoder finished this row; stream the rest; return the OpenAI finish reason."""
        self._stream(self.text(), final=True)
        return "stop" if self.cut else finish

    def text(self) -> str:
        text = self._decoded()
        cut = _first_stop(text, self.stops)
        return (text if cut is None else text[:cut]).strip()

    def _decoded(self) -> str:
        return self.tok.decode(self.tokens, skip_special_tokens=True)

    def _stream(self, text: str, final: bool) -> None:
        """Send the new part of `text`; before the end, hold back a tail that could still
        become a stop string or an incomplete character."""
        if self.job.deltas is None:
            return
        if not final:
            text = text[: len(text) - self.hold_back]
            if text.endswith("\ufffd"):
                return
        if len(text) > self.sent:
            piece, self.sent = text[self.sent :], len(text)
            self.job.loop.call_soon_threadsafe(self.job.deltas.put_nowait, piece)


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
