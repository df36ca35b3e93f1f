"""The one driver of the decode loop: requests in, answers out.

predict, chat and eval call `answer_all`, extract streams its records through
`answer_stream`; the server's batcher thread calls `Driver.admit` / `Driver.step` itself,
between which it takes new requests. Either way a request becomes a decode-loop row in
`prepare` (prompt tokens through the training template, stop tokens, grammar, grounding,
answer length, sampling settings) and its text is watched by one `TextWatcher` (stop
strings, streaming, cancellation), so every path gives the same answer to the same prompt.

With a JSON Schema (Request.schema) decoding is constrained by xgrammar, so every answer is
valid JSON with exactly the schema's keys; fields the schema marks verbatim are copied from
the input (infer/ground.py).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from slmtune.config import DEFAULT_MAX_NEW_TOKENS, DecodeConfig
from slmtune.data.types import Message, last_user_text
from slmtune.infer.constrain import compiled_grammar, grammar_compiler
from slmtune.infer.decode import DecodeLoop, Row
from slmtune.infer.ground import grounding, token_bytes
from slmtune.run import OpenRun, decoding_schema
from slmtune.run.schema import answer_token_bound


@dataclass
class Request:
    """One prompt to answer, and how."""

    messages: list[Message]  # ends with a user turn; see OpenRun.prompt
    max_new_tokens: int | None = None  # None: see answer_limit
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    schema: dict | None = None  # constrain the answer to this JSON Schema
    source: str | None = None  # the input verbatim values copy from; None = the last user turn
    stop: list[str] = field(default_factory=list)  # the caller's stop strings
    adapter: str | None = None  # PEFT adapter of a multi-adapter model; None = as loaded
    on_text: Callable[[str], None] | None = None  # streaming: each new piece of the answer
    cancelled: Callable[[], bool] | None = None  # asked at every token; True frees the row
    logprobs: bool = False  # report each answer token's log-probability (Generation.logprobs)


def requests_for(opened: OpenRun, prompts: list, cfg: DecodeConfig) -> list[Request]:
    """One request per prompt (a text or messages), with the decoding options of `cfg`:
    the system prompt rule of OpenRun.prompt, the answer schema unless --no-constrain."""
    schema = decoding_schema(opened, cfg.schema_file, cfg.constrain)
    return [
        Request(
            opened.prompt(p, system=cfg.system),
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            schema=schema,
        )
        for p in prompts
    ]


@dataclass
class Generation:
    """One answer and what it cost."""

    text: str
    prompt_tokens: int
    new_tokens: int
    finish_reason: str  # "stop" (token or string) | "length" (max_new_tokens) | "error"
    prompt_truncated: bool  # the input was shortened to fit the context
    error: Exception | None = None  # finish_reason "error": what failed (this answer only)
    logprobs: list[float] | None = None  # Request.logprobs: per chosen token (stop included)
    passes: int = 0  # forward passes it took part in, prefill included (drafting saves some)

    @property
    def finished(self) -> bool:
        return self.finish_reason == "stop"


def source_of(request: Request) -> str | None:
    """The text a request's verbatim values are copied from: its `source`, else the content
    of its last user turn (the input, as training saw it)."""
    return request.source if request.source is not None else last_user_text(request.messages)


class TextWatcher:
    """One answer's text as it grows: ends it at a stop string (the caller's, or a turn-end
    marker that spans several tokens), streams it, and frees the row of a cancelled request."""

    def __init__(self, tokenizer, request: Request, renderer):
        self.tok, self.request = tokenizer, request
        self.stops = [s for s in (*request.stop, renderer.turn_end) if s]
        self.hold_back = max((len(s) for s in request.stop), default=1)
        # Decoding at every token is needed only to find a stop string or to stream; a
        # single-token turn end is a stop token and never shows up in the text.
        self.decodes = bool(request.stop or renderer.stop_strings or request.on_text)
        self.tokens: list[int] = []
        self.sent = 0  # characters already streamed
        self.cut = False  # ended by a stop string

    def feed(self, token: int) -> bool:
        """A new token; True = the answer is complete (stop string, or nobody waits)."""
        self.tokens.append(token)
        if self.decodes:
            text = self._decoded()
            if _first_stop(text, self.stops) is not None:
                self.cut = True
                return True
            self._stream(text.lstrip(), final=False)
        return self.request.cancelled is not None and self.request.cancelled()

    def finish(self, row: Row, prompt_truncated: bool) -> Generation:
        """The decoder is done with this row: send the rest of the stream, say how it ended."""
        text = self.text()
        self._stream(text, final=True)
        reason = "stop" if self.cut else row.finish
        return Generation(
            text,
            len(row.prompt),
            len(row.tokens),
            reason,
            prompt_truncated,
            row.error,
            row.logprobs,
            row.passes,
        )

    def text(self) -> str:
        text = self._decoded()
        cut = _first_stop(text, self.stops)
        return (text if cut is None else text[:cut]).strip()

    def _decoded(self) -> str:
        return self.tok.decode(self.tokens, skip_special_tokens=True)

    def _stream(self, text: str, final: bool) -> None:
        """Send the new part of `text`; before the end, hold back a tail that could still
        become a stop string or an incomplete character."""
        if self.request.on_text is None:
            return
        if not final:
            text = text[: len(text) - self.hold_back]
            if text.endswith("\ufffd"):
                return
        if len(text) > self.sent:
            piece, self.sent = text[self.sent :], len(text)
            self.request.on_text(piece)


def _first_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s in text]
    return min(hits) if hits else None


@dataclass
class Flight:
    """What the driver keeps for a row in flight; `tag` is the caller's own."""

    watcher: TextWatcher
    prompt_truncated: bool
    tag: object


def prepare(opened: OpenRun, request: Request, tag: object = None) -> Row:
    """A request as a decode-loop row: the prompt through the training template (shortened
    to fit if needed), the template's stop tokens, the grammar, the sampling settings.
    Rendering and grammar compilation happen here, before the row meets the loop."""
    renderer = opened.renderer
    ids, truncated = renderer.prompt_ids(request.messages)
    watcher = TextWatcher(opened.tokenizer, request, renderer)
    return Row(
        prompt=ids,
        max_new_tokens=request.max_new_tokens or answer_limit(opened, request, len(ids)),
        stop_ids=frozenset(renderer.stop_token_ids),
        grammar=compiled_grammar(opened, request.schema) if request.schema else None,
        grounding=grounding(opened, request.schema, source_of(request)),
        temperature=request.temperature,
        top_p=request.top_p,
        seed=request.seed,
        adapter=request.adapter,
        on_token=watcher.feed,
        logprobs=[] if request.logprobs else None,
        tag=Flight(watcher, truncated, tag),
    )


def warm_up(opened: OpenRun) -> None:
    """Build now what the first constrained request would otherwise wait for (~4 s for a
    262k vocabulary): xgrammar's view of the vocabulary and its compiler, the vocabulary by
    bytes (grounding), the grammar of the run's schema."""
    grammar_compiler(opened)
    token_bytes(opened)
    if opened.schema is not None:
        compiled_grammar(opened, opened.schema)


def answer_limit(
    opened: OpenRun, request: Request, prompt_tokens: int, context: int | None = None
) -> int:
    """A request's default answer length: with a bounded schema, the most tokens a valid
    answer can take for this input (so a valid answer is never cut), within the model's
    context (`context`, else the loaded model's); else DEFAULT_MAX_NEW_TOKENS."""
    source = source_of(request) or ""
    escaped = len(json.dumps(source, ensure_ascii=False).encode())
    bound = answer_token_bound(request.schema, escaped) if request.schema else None
    if bound is None:
        return DEFAULT_MAX_NEW_TOKENS
    if context is None:
        context = getattr(opened.model.config, "max_position_embeddings", None) or 32768
    return max(1, min(bound, context - prompt_tokens))


class Driver:
    """Rows join (`admit`) and advance (`step`); each finished row comes back as (tag,
    Generation). Not thread-safe: one caller at a time."""

    def __init__(self, model, pad_token_id: int):
        self.loop = DecodeLoop(model, pad_token_id)

    @property
    def in_flight(self) -> int:
        return len(self.loop.rows)

    def admit(self, rows: list[Row]) -> list[tuple[object, Generation]]:
        return self._finished(self.loop.add(rows))

    def step(self) -> list[tuple[object, Generation]]:
        return self._finished(self.loop.step())

    def clear(self) -> list[object]:
        """Drop every row in flight (after a failed step); returns their tags."""
        tags = [row.tag.tag for row in self.loop.rows]
        self.loop.clear()
        return tags

    @staticmethod
    def _finished(rows: list[Row]) -> list[tuple[object, Generation]]:
        return [(r.tag.tag, r.tag.watcher.finish(r, r.tag.prompt_truncated)) for r in rows]


def answer_all(
    opened: OpenRun, requests: list[Request], batch_size: int, progress=None
) -> list[Generation]:
    """Answer every request, input order kept, up to `batch_size` answers in flight; all
    prompts are sorted by length together (see answer_stream)."""
    answers: list[Generation | None] = [None] * len(requests)
    tagged = list(enumerate(requests))
    for i, generation in answer_stream(opened, tagged, batch_size, window=max(1, len(tagged))):
        answers[i] = generation
        if progress:
            progress(1)
    return answers


def answer_stream(
    opened: OpenRun, requests: Iterable[tuple[object, Request]], batch_size: int, window: int
) -> Iterator[tuple[object, Generation]]:
    """(tag, answer) for each (tag, request), as answers finish, up to `batch_size` in flight.

    Requests are read `window` at a time and go in shortest first (little padding); a
    finished answer's place is refilled at once, and the next window is read as soon as the
    current one has all gone in, while its answers are still being decoded, so the loop never
    drains between windows and one long answer never holds the others back."""
    source = iter(requests)
    waiting: deque[Row] = deque()
    driver = Driver(opened.model, opened.tokenizer.pad_token_id)
    while True:
        if not waiting:
            window_rows = [prepare(opened, r, tag=t) for t, r in islice(source, window)]
            waiting.extend(sorted(window_rows, key=lambda r: len(r.prompt)))
        if not waiting and not driver.in_flight:
            return
        room = min(batch_size - driver.in_flight, len(waiting))
        finished = driver.admit([waiting.popleft() for _ in range(room)]) if room else []
        finished += driver.step()
        yield from finished
