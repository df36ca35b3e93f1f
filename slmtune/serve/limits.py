"""What one client may send: checked before any expensive work, refused with a 4xx that
names the field, so no request can slow down or break the others.

- `BodyLimit` (ASGI middleware): reads the body as it streams in (chunked uploads too) and
  answers 413 as soon as it passes the cap, before routing, authentication or parsing;
- `HostCheck`: a keyless server on loopback answers only requests addressed to loopback
  names, so a web page cannot reach it through DNS rebinding;
- `check_chat` / `check_schema`: message count and size, stop strings, schema size and depth.
"""

from __future__ import annotations

import json

from fastapi import HTTPException

from slmtune.config import ServeConfig


def error_body(status: int, message: str) -> bytes:
    """OpenAI's error shape: existing clients raise their usual exceptions from it."""
    kinds = {401: "authentication_error", 404: "not_found_error", 413: "request_too_large",
             422: "invalid_request_error", 503: "server_busy"}  # fmt: skip
    kind = kinds.get(status, "invalid_request_error" if status < 500 else "server_error")
    return json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()


async def _send_error(send, status: int, message: str) -> None:
    body = error_body(status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Buffer each request body up to `limit` bytes, then hand it on; 413 past the limit."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            return await _send_error(send, 413, f"request body over {self.limit} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await _send_error(send, 413, f"request body over {self.limit} bytes")
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for the client to go away

        return await self.app(scope, replay, send)


LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


class HostCheck:
    """For keyless loopback servers: 400 unless the Host header names a loopback address."""

    def __init__(self, app, bind_host: str):
        self.app, self.allowed = app, LOOPBACK_NAMES | {bind_host}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.strip("[]") not in self.allowed:
                message = f"Host '{host}' is not this server (loopback only without an API key)"
                return await _send_error(send, 400, message)
        return await self.app(scope, receive, send)


def check_chat(messages: list, stop: list[str], cfg: ServeConfig) -> None:
    """422 naming the field when a chat request is over a limit."""
    if len(messages) > cfg.max_messages:
        _invalid("messages", f"{len(messages)} messages, at most {cfg.max_messages}")
    total = 0
    for i, m in enumerate(messages):
        total += len(m.content)
        if len(m.content) > cfg.max_message_chars:
            _invalid(f"messages.{i}.content", f"over {cfg.max_message_chars} characters")
    if total > cfg.max_prompt_chars:
        _invalid("messages", f"{total} characters in all, at most {cfg.max_prompt_chars}")
    if len(stop) > cfg.max_stop:
        _invalid("stop", f"{len(stop)} stop strings, at most {cfg.max_stop}")
    for i, s in enumerate(stop):
        if not s or len(s) > cfg.max_stop_chars:
            _invalid(f"stop.{i}", f"a stop string has 1 to {cfg.max_stop_chars} characters")


def check_schema(schema: dict, where: str, cfg: ServeConfig) -> None:
    """400 naming the field when a client's JSON Schema is too big or too deep to compile."""
    if not isinstance(schema, dict):
        raise HTTPException(400, f"{where}: a JSON Schema must be an object")
    size = len(json.dumps(schema))
    if size > cfg.max_schema_kb * 1024:
        raise HTTPException(400, f"{where}: {size} bytes, at most {cfg.max_schema_kb} KB")
    depth = _depth(schema)
    if depth > cfg.max_schema_depth:
        raise HTTPException(400, f"{where}: nested {depth} deep, at most {cfg.max_schema_depth}")


def _depth(value) -> int:
    """Nesting depth, without recursion (a hostile schema may be nested thousands deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _invalid(field: str, message: str):
    raise HTTPException(422, f"invalid request: {field}: {message}")
