"""The teacher: any OpenAI-compatible chat endpoint, asked for one JSON answer per text.

The official `openai` client does the HTTP work: its retries (exponential backoff with
jitter, honouring Retry-After) cover 408/409/429/5xx, connection errors and timeouts. On top:
- at most `--concurrency` texts are being labelled at once (a semaphore), and every HTTP
  attempt, retries included, waits for the `--rpm` limiter (aiolimiter's leaky bucket);
- each answer is parsed (```json fences tolerated), validated against the schema
  (jsonschema) and checked for grounding: a verbatim field's value must occur in the text.
  An answer that does not parse or validate is asked for once more, then given up with the
  reason; an ungrounded answer (an invented value) is given up at once.
The API key is read from the environment variable the user names and is only ever handed to
the client: it is never printed, logged or written.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field

from slmtune.errors import SlmtuneError
from slmtune.run.answer import parse_json_answer, ungrounded, verbatim_paths, without_verbatim

ASKS = 2  # an invalid answer is asked for once more


@dataclass
class Reply:
    """The teacher's label for one text, or why there is none."""

    answer: dict | None = None
    raw: str | None = None  # the last answer text, kept when it is rejected
    reason: str | None = None  # teacher_error | invalid_json | schema_mismatch | ungrounded
    message: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0
    fields: list[str] = field(default_factory=list)  # ungrounded: which fields


class Teacher:
    """Labels texts through one endpoint; `ask` is safe to run concurrently."""

    def __init__(self, cfg, schema: dict | None):
        import openai
        from aiolimiter import AsyncLimiter

        key = None
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise SlmtuneError(
                    f"--api-key-env {cfg.api_key_env}: that environment variable is not set"
                )
        rate = AsyncLimiter(cfg.rpm, 60) if cfg.rpm else None

        async def wait_for_rate(_request) -> None:
            if rate is not None:
                await rate.acquire()

        self.client = openai.AsyncOpenAI(
            base_url=cfg.teacher_url,
            api_key=key or "no-key",  # a local teacher needs none; the client wants a string
            max_retries=cfg.retries,
            timeout=cfg.timeout,
            http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [wait_for_rate]}),
        )
        self.cfg = cfg
        self.slots = asyncio.Semaphore(cfg.concurrency)
        self.use_schema(schema)

    def use_schema(self, schema: dict | None) -> None:
        """Validate (and ask for) answers under `schema`; None: any JSON object."""
        from jsonschema import Draft202012Validator

        self.schema = schema
        self.validator = Draft202012Validator(schema) if schema else None
        self.verbatim = verbatim_paths(schema)
        if schema is None:
            self.response_format = {"type": "json_object"}
        else:
            self.response_format = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": without_verbatim(schema)},
            }

    async def ask(self, text: str) -> Reply:
        import openai

        reply = Reply()
        async with self.slots:
            for _ in range(ASKS):
                reply.requests += 1
                try:
                    completion = await self.client.chat.completions.create(
                        model=self.cfg.teacher_model,
                        messages=[
                            {"role": "system", "content": self.cfg.system},
                            {"role": "user", "content": text},
                        ],
                        response_format=self.response_format,
                        temperature=self.cfg.temperature,
                        max_tokens=self.cfg.max_tokens,
                    )
                except openai.APIError as exc:  # retries already spent by the client
                    reply.reason, reply.message = "teacher_error", _api_error(exc)
                    return reply
                if completion.usage is not None:
                    reply.tokens_in += completion.usage.prompt_tokens or 0
                    reply.tokens_out += completion.usage.completion_tokens or 0
                choice = completion.choices[0] if completion.choices else None
                reply.raw = (choice.message.content if choice else None) or ""
                self.judge(reply, text)
                if reply.reason in (None, "ungrounded"):
                    return reply
        return reply

    def judge(self, reply: Reply, text: str) -> None:
        """Set the reply's answer, or the reason it has none."""
        reply.answer, reply.reason, reply.message = None, None, None
        obj, why = parse_json_answer(reply.raw)
        if obj is None:
            reply.reason, reply.message = "invalid_json", why
            return
        if self.validator is not None:
            from jsonschema.exceptions import best_match

            error = best_match(self.validator.iter_errors(obj))
            if error is not None:
                where = ".".join(str(p) for p in error.absolute_path) or "answer"
                reply.reason, reply.message = "schema_mismatch", f"{where}: {error.message}"
                return
        bad = ungrounded(obj, text, self.verbatim)
        if bad:
            reply.fields = bad
            reply.reason = "ungrounded"
            reply.message = f"not in the text: {', '.join(bad)}"
            return
        reply.answer = obj

    async def close(self) -> None:
        await self.client.close()


def _api_error(exc) -> str:
    status = getattr(exc, "status_code", None)
    what = f"HTTP {status}: {exc.message}" if status else type(exc).__name__
    return f"{what[:300]} (retries spent)"
