"""Continuous batching for the server: requests join and leave the decode loop between steps.

Requests wait in a bounded queue (full -> the API answers 503). One worker thread owns the
model and the decode driver (infer/driver.py): when idle it waits for a request and gathers
more for up to `max_wait_ms`; while decoding, it takes whatever is waiting (up to
`max_batch` rows in flight) before every step, so a new request starts within one step and a
finished one answers at once instead of waiting for the longest answer in its batch. Rows
keep their own limits, sampling settings, seed, grammar, adapter and stop strings; the
driver's text watcher streams each answer and frees the row of a client that went away.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass

from slmtune.infer.decode import Row
from slmtune.infer.driver import Driver, Generation, Request

JSON_OBJECT = {"type": "object"}  # response_format json_object without a run schema
log = logging.getLogger("slmtune.serve")


class QueueFull(Exception):
    pass


@dataclass
class Job:
    """A request on its way through the server: the asyncio side waits on `future`."""

    served: object  # models.Served
    request: Request
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future | None = None
    deltas: asyncio.Queue | None = None  # streaming: text pieces, then None
    row: Row | None = None  # the decode-loop row, prepared off the decode thread

    def bind(self, loop: asyncio.AbstractEventLoop, stream: bool) -> None:
        """Attach to the caller's event loop; the driver's callbacks cross back into it."""
        self.loop, self.future = loop, loop.create_future()
        self.request.cancelled = self.future.done  # the client went away: free the row
        if stream:
            self.deltas = asyncio.Queue()
            self.request.on_text = lambda piece: loop.call_soon_threadsafe(
                self.deltas.put_nowait, piece
            )


class Batcher:
    def __init__(self, pool, *, max_batch: int, max_wait_ms: int, max_queue: int, metrics=None):
        self.pool, self.max_batch, self.max_wait = pool, max_batch, max_wait_ms / 1000
        self.queue: queue.Queue[Job] = queue.Queue(maxsize=max_queue)
        self.metrics = metrics
        self.driver = Driver(pool.model, pool.pad_token_id)
        self.thread = threading.Thread(target=self._work, name="slmtune-batcher", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull from None

    def _work(self) -> None:
        while True:
            jobs = self._waiting(idle=not self.driver.in_flight)
            if jobs:
                self._admit(jobs)
            if self.driver.in_flight:
                self._step()

    def _waiting(self, idle: bool) -> list[Job]:
        """Requests to start now: when idle, block for one and gather for max_wait."""
        room = self.max_batch - self.driver.in_flight
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
        rows = [job.row for job in jobs if not job.future.done()]  # skip the cancelled
        if not rows:
            return
        try:
            self._done(self.driver.admit(rows))
        except Exception as exc:  # answered as a 500 without details
            log.exception("prefill failed")
            for row in rows:
                _finish(row.tag.tag, exc)

    def _step(self) -> None:
        start, size = time.monotonic(), self.driver.in_flight
        try:
            finished = self.driver.step()
        except Exception as exc:
            log.exception("decoding step failed")
            for job in self.driver.clear():
                _finish(job, exc)
            return
        self._done(finished)
        if self.metrics:
            self.metrics.step(size, time.monotonic() - start)

    def _done(self, finished: list[tuple[Job, Generation]]) -> None:
        for job, generation in finished:
            if generation.error is not None:  # this request failed; its neighbours go on
                log.error("request failed: %r", generation.error)
                _finish(job, generation.error)
            else:
                _finish(job, generation)


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
    return served.opened.schema or JSON_OBJECT  # json_object: the run's schema if it has one
