"""A teacher that answers from gold labels: a real OpenAI-compatible HTTP endpoint.

With it `slmtune label` can be measured without a big model: the selection strategies'
learning curves (bench/label_select.py) and the labelling job's behaviour (tests). It answers
`/v1/chat/completions` with the gold answer of the user message's text; a `fault` hook may
answer instead (broken JSON, 429s, slow replies: the tests' hostile teachers).

    app = oracle_app(gold_answers("labelled.jsonl"))   # then serve it with uvicorn
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from slmtune.data.load import load_examples
from slmtune.data.types import last_user_text

Fault = Callable[[str, int], Awaitable[object | None]]  # (text, request number) -> reply


def gold_answers(path: str) -> dict[str, str]:
    """text -> gold answer, from labelled records (alpaca/messages)."""
    examples = load_examples(path).examples
    return {last_user_text(e.prompt_messages) or "": e.answer or "" for e in examples}


def oracle_app(gold: dict[str, str], fault: Fault | None = None, delay: float = 0.0):
    """The teacher app. Its `state` counts requests and the most served at once, and keeps
    each request's Authorization header (tests check what the client sent)."""
    app = FastAPI()
    state = app.state
    state.requests, state.in_flight, state.most_in_flight = 0, 0, 0
    state.authorization = []

    @app.post("/v1/chat/completions")
    async def complete(request: Request):
        body = await request.json()
        text = body["messages"][-1]["content"]
        state.requests += 1
        number = state.requests
        state.authorization.append(request.headers.get("authorization"))
        state.in_flight += 1
        state.most_in_flight = max(state.most_in_flight, state.in_flight)
        try:
            if delay:
                await asyncio.sleep(delay)
            reply = await fault(text, number) if fault else None
            if isinstance(reply, JSONResponse):
                return reply
            content = reply if isinstance(reply, str) else gold.get(text)
            if content is None:
                return JSONResponse({"error": {"message": "text not in the gold set"}}, 404)
            return _completion(body, content)
        finally:
            state.in_flight -= 1

    return app


def _completion(body: dict, content: str) -> dict:
    prompt = sum(len(m.get("content") or "") for m in body["messages"])
    return {
        "id": f"oracle-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "oracle"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        # characters stand in for tokens: enough to check that usage and cost add up
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": len(content),
            "total_tokens": prompt + len(content),
        },
    }
