"""The OpenAI-compatible HTTP API (FastAPI): chat completions, extract, models, health, metrics.

Error bodies follow OpenAI's shape, {"error": {"message", "type", "code"}}, so existing
clients raise their usual exceptions; no stack trace ever leaves the server. Limits on what
a client may send are in limits.py; a request's prompt is rendered and its grammar compiled
on a worker thread (`_prepare`), so the decode thread only ever decodes.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from typing import Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from slmtune.chat import TemplateError
from slmtune.config import ServeConfig
from slmtune.data.types import Message
from slmtune.infer import driver
from slmtune.infer.constrain import SchemaError
from slmtune.infer.driver import Generation, prepare
from slmtune.run import parse_json_answer
from slmtune.run.answer import spans, verbatim_paths
from slmtune.serve.batcher import Batcher, Job, QueueFull, schema_for
from slmtune.serve.limits import BodyLimit, HostCheck, check_chat, check_schema, error_body
from slmtune.serve.metrics import Metrics

log = logging.getLogger("slmtune.serve")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # unknown OpenAI knobs are accepted and ignored
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)  # what torch's generator takes
    stream: bool = False
    n: int = Field(1, ge=1, le=1)
    response_format: dict | None = None
    truncate_prompt: bool = False  # slmtune: shorten a prompt over the context, and say so


class ExtractRequest(BaseModel):
    model: str | None = None
    text: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    truncate_prompt: bool = False


def create_app(pool, cfg: ServeConfig, *, api_key: str | None = None):
    metrics = Metrics()
    batcher = Batcher(
        pool,
        max_batch=cfg.max_batch,
        max_wait_ms=cfg.max_wait_ms,
        max_queue=cfg.max_queue,
        metrics=metrics,
    )
    metrics.queue_depth.set_function(batcher.queue.qsize)
    app = FastAPI(title="slmtune", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=cfg.max_body_bytes)  # inside `guard`: still counted
    if api_key is None:
        app.add_middleware(HostCheck, bind_host=cfg.host)

    def authorized(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise HTTPException(401, "missing or wrong API key (Authorization: Bearer KEY)")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        start = time.monotonic()
        try:
            response = await call_next(request)
        except Exception:
            log.exception("unhandled error")
            response = _error(500, "internal server error")
        metrics.request(request.url.path, response.status_code, time.monotonic() - start)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        headers = {"Retry-After": "1"} if exc.status_code == 503 else None
        return _error(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        return _error(422, f"invalid request: {problems}")

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(pool.served)}

    @app.get("/metrics", dependencies=[Depends(authorized)])
    async def prometheus():
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def list_models():
        data = [
            {"id": n, "object": "model", "created": 0, "owned_by": "slmtune"} for n in pool.served
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorized)])
    async def chat_completions(req: ChatRequest, http: Request):
        served = _served(pool, req.model)
        messages = _messages(req.messages)
        stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
        check_chat(messages, stop, cfg)
        schema = schema_for(served, req.response_format)
        if schema is not None and schema is not served.opened.schema:
            check_schema(schema, "response_format.json_schema.schema", cfg)
        request = driver.Request(
            served.opened.prompt(messages),  # the run's system prompt if none
            max_new_tokens=_max_tokens(req.max_completion_tokens or req.max_tokens, cfg),
            temperature=req.temperature or 0.0,
            top_p=req.top_p,
            seed=req.seed,
            stop=stop,
            schema=schema,
            adapter=served.adapter,
        )
        job = await _prepare(Job(served, request), req.stream, req.truncate_prompt)
        _submit(batcher, job)  # a full queue answers 503 before any stream starts
        if req.stream:
            return StreamingResponse(_stream(job), media_type="text/event-stream")
        return _completion(job, await _wait(job, http))

    @app.post("/v1/extract", dependencies=[Depends(authorized)])
    async def extract(req: ExtractRequest, http: Request):
        served = _served(pool, req.model)
        if served.opened.schema is None:
            raise HTTPException(400, f"model {served.name} has no answer schema (not a JSON task)")
        request = driver.Request(
            served.opened.prompt(req.text),
            max_new_tokens=_max_tokens(req.max_tokens, cfg) if req.max_tokens else None,
            schema=served.opened.schema,
            adapter=served.adapter,
        )
        job = await _prepare(Job(served, request), False, req.truncate_prompt)
        # without max_tokens: what a schema-valid answer to this text can need, within the cap
        job.row.max_new_tokens = min(job.row.max_new_tokens, cfg.max_tokens_cap)
        _submit(batcher, job)
        result = await _wait(job, http)
        output, reason = parse_json_answer(result.text)
        error = None
        if output is None:
            kind = "max_tokens" if result.finish_reason == "length" else "invalid_json"
            error = {"kind": kind, "message": reason, "raw": result.text}
        usage = _usage(result)
        located = spans(output, req.text, verbatim_paths(served.opened.schema))
        body = {"model": served.name, "output": output, "spans": located, "error": error}
        body["usage"] = usage
        return body | ({"prompt_truncated": True} if result.prompt_truncated else {})

    app.state.batcher, app.state.metrics = batcher, metrics
    return app


# -- helpers -------------------------------------------------------------------------------


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return Response(error_body(status, message), status, headers, media_type="application/json")


def _served(pool, name: str | None):
    served = pool.get(name)
    if served is None:
        raise HTTPException(404, f"model '{name}' not served here; GET /v1/models lists them")
    return served


def _messages(messages: list[ChatMessage]) -> list[Message]:
    out = []
    for m in messages:
        content = m.content
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        out.append(Message("system" if m.role == "developer" else m.role, content or ""))
    if out[-1].role != "user":
        raise HTTPException(422, "invalid request: messages: the last message must be 'user'")
    return out


def _max_tokens(requested: int | None, cfg: ServeConfig) -> int:
    return min(requested or cfg.default_max_tokens, cfg.max_tokens_cap)


async def _prepare(job: Job, stream: bool, truncate: bool) -> Job:
    """Render the prompt and compile the grammar on a worker thread (off the decode thread);
    refuse what cannot be answered as asked, naming the field."""
    job.bind(asyncio.get_running_loop(), stream)
    try:
        job.row = await asyncio.to_thread(prepare, job.served.opened, job.request, job)
    except SchemaError as exc:
        raise HTTPException(400, f"response_format.json_schema.schema: {exc}") from None
    except TemplateError as exc:
        raise HTTPException(422, f"invalid request: messages: {exc}") from None
    if job.row.tag.prompt_truncated and not truncate:
        limit = job.served.opened.renderer.max_length
        raise HTTPException(
            400,
            f"messages: the prompt is over the model's {limit}-token context; shorten it, "
            "or pass truncate_prompt: true to cut the last user message to fit",
        )
    return job


def _submit(batcher: Batcher, job: Job) -> None:
    try:
        batcher.submit(job)
    except QueueFull:
        raise HTTPException(503, "server busy: request queue is full; retry shortly") from None


async def _wait(job: Job, http: Request | None = None) -> Generation:
    """The answer; a client that goes away cancels its request, which frees its row."""
    try:
        while http is not None and not job.future.done():
            await asyncio.wait([job.future], timeout=0.5)
            if not job.future.done() and await http.is_disconnected():
                job.future.cancel()
        return await job.future
    except asyncio.CancelledError:
        raise HTTPException(499, "client closed the request") from None
    except Exception:
        log.exception("generation failed")
        raise HTTPException(500, "generation failed") from None


def _usage(result: Generation) -> dict:
    total = result.prompt_tokens + result.new_tokens
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.new_tokens,
        "total_tokens": total,
    }


def _completion(job: Job, result: Generation) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": job.served.name,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": _usage(result),
    } | ({"prompt_truncated": True} if result.prompt_truncated else {})


async def _stream(job: Job):
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta: dict, finish: str | None = None) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": job.served.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        while (piece := await job.deltas.get()) is not None:
            yield chunk({"content": piece})
        result = await _wait(job)
        yield chunk({}, result.finish_reason)
    except HTTPException as exc:
        yield f"data: {json.dumps({'error': {'message': exc.detail, 'code': exc.status_code}})}\n\n"
    finally:  # the client went away mid-stream (or we are done): free the row
        if not job.future.done():
            job.future.cancel()
    yield "data: [DONE]\n\n"
