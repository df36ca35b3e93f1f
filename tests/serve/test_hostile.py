"""Hostile requests against a running server: each is refused (or answered) cleanly, and three
ordinary requests in flight at the same time get the very answers they get alone, on time."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from slmtune.config import ServeConfig
from slmtune.serve.server import build_app
from tests.serve.harness import SHORT, Server

BYSTANDERS = ["我叫张三，邮箱zs@qq.com", "住在北京市朝阳区", "hello there"]
ON_TIME = 60  # seconds: a bystander's 12 tokens take well under a second alone


@pytest.fixture(scope="module")
def server(short_run):
    """Keyless, on loopback: the setting the Host check protects."""
    app, _ = build_app(str(short_run), ServeConfig(name="tiny", max_body_kb=200))
    srv = Server(app)
    srv.app = app
    yield srv
    srv.stop()


def _chat(url: str, body: dict, **kw) -> httpx.Response:
    body = {"model": "tiny", "max_tokens": 12, **body}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=120, **kw)


def _answer(url: str, text: str) -> str:
    reply = _chat(url, {"messages": [{"role": "user", "content": text}]})
    assert reply.status_code == 200, reply.text
    return reply.json()["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def alone(server) -> list[str]:
    return [_answer(server.url, t) for t in BYSTANDERS]


def with_bystanders(server, alone, hostile) -> httpx.Response:
    """Run `hostile()` while the three bystanders are in flight; check them; return its reply."""
    with ThreadPoolExecutor(4) as pool:
        start = time.monotonic()
        futures = [pool.submit(_answer, server.url, t) for t in BYSTANDERS]
        reply = pool.submit(hostile).result(timeout=ON_TIME)
        answers = [f.result(timeout=ON_TIME) for f in futures]
    assert answers == alone
    assert time.monotonic() - start < ON_TIME
    assert "Traceback" not in reply.text
    return reply


def test_a_near_zero_temperature_is_greedy_not_a_poisoned_batch(server, alone):
    body = {"messages": [{"role": "user", "content": BYSTANDERS[0]}], "temperature": 1e-300}
    reply = with_bystanders(server, alone, lambda: _chat(server.url, body))
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"] == alone[0]


def test_a_schema_with_a_dangling_ref_is_a_400_naming_it(server, alone):
    schema = {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    reply = with_bystanders(server, alone, lambda: _chat(server.url, body))
    assert reply.status_code == 400
    message = reply.json()["error"]["message"]
    assert "response_format.json_schema.schema" in message and "#/$defs/missing" in message


def test_thousands_of_messages_are_refused_at_once(server, alone):
    body = {"messages": [{"role": "user", "content": "hi"}] * 6001}
    assert len(json.dumps(body)) > 100_000
    start = time.monotonic()
    reply = with_bystanders(server, alone, lambda: _chat(server.url, body))
    assert (
        reply.status_code == 422 and "messages: 6001 messages" in reply.json()["error"]["message"]
    )
    assert time.monotonic() - start < ON_TIME


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"stop": [f"s{i}" for i in range(10)]}, "stop"),
        ({"stop": ["x" * 1000]}, "stop.0"),
        ({"seed": 2**70}, "seed"),
        ({"messages": [{"role": "user", "content": "长" * 40_000}]}, "messages.0.content"),
    ],
)
def test_over_a_limit_is_a_422_naming_the_field(server, extra, field):
    reply = _chat(server.url, {"messages": [{"role": "user", "content": "x"}], **extra})
    assert reply.status_code == 422 and field in reply.json()["error"]["message"], reply.text


def test_a_deep_schema_is_refused_before_compiling(server):
    deep: dict = {"type": "string"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}}
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": deep}},
    }
    reply = _chat(server.url, body)
    assert reply.status_code == 400 and "nested" in reply.json()["error"]["message"]


def test_a_prompt_over_the_context_is_cut_only_when_allowed(server):
    long = {"messages": [{"role": "user", "content": "很长的投诉。" * 100}]}
    refused = _chat(server.url, long)
    assert refused.status_code == 400 and "truncate_prompt" in refused.json()["error"]["message"]
    cut = _chat(server.url, {**long, "truncate_prompt": True})
    assert cut.status_code == 200 and cut.json()["prompt_truncated"] is True


def test_a_chunked_body_over_the_cap_is_a_413(server):
    def chunks():
        for _ in range(300):
            yield b"x" * 1024

    reply = httpx.post(f"{server.url}/v1/chat/completions", content=chunks(), timeout=60)
    assert reply.status_code == 413


def test_a_foreign_host_header_is_refused_without_a_key(server):
    reply = httpx.get(f"{server.url}/v1/models", headers={"Host": "evil.example:8000"})
    assert reply.status_code == 400 and "not this server" in reply.json()["error"]["message"]
    assert httpx.get(f"{server.url}/v1/models").status_code == 200


def test_random_paths_do_not_make_new_metric_series(server):
    for i in range(5):
        assert httpx.get(f"{server.url}/v1/nothing-{i}").status_code == 404
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "nothing-" not in metrics and 'path="other"' in metrics


def test_a_client_that_goes_away_frees_its_row(server):
    """The schema forces a 1024-token answer; the client leaves after the first chunk."""
    driver = server.app.state.batcher.driver
    long = {"type": "object", "properties": {"a": {"type": "string", "minLength": 5000}}}
    body = {
        "model": "tiny",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": "hello"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": long}},
    }
    before = _generated_tokens(server.url)
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body) as reply:
        for line in reply.iter_lines():  # up to the first piece of text: the row is in flight
            if '"content": "' in line and '"content": ""' not in line:
                break
    deadline = time.monotonic() + ON_TIME
    while driver.in_flight and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.in_flight == 0
    spent = _generated_tokens(server.url) - before
    assert 0 < spent < 512  # freed long before its 1024 tokens


def _generated_tokens(url: str) -> float:
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    (line,) = [x for x in lines if x.startswith("slmtune_generated_tokens_total ")]
    return float(line.split()[1])


def test_schema_requests_still_answer_after_the_hostile_ones(server):
    """The server's own schema requests keep answering after hostile ones (no state leak)."""
    body = {
        "messages": [{"role": "user", "content": "邮箱zhangsan@qq.com"}],
        "max_tokens": 64,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SHORT}},
    }
    reply = _chat(server.url, body)
    answer = json.loads(reply.json()["choices"][0]["message"]["content"])
    assert list(answer) == ["name", "email", "vip"]
