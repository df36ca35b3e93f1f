"""The real server on a loopback port, driven by the official `openai` client."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from slmtune.config import ServeConfig, TrainConfig
from slmtune.errors import ConfigError
from slmtune.infer.driver import Request, answer_all
from slmtune.run import open_run
from slmtune.serve.server import build_app
from slmtune.train.average import average
from slmtune.train.train import train
from tests.serve.harness import KEY, SHORT, Server


@pytest.fixture(scope="module")
def server(short_run):
    cfg = ServeConfig(name="tiny", max_tokens_cap=64, max_body_kb=4)
    app, _ = build_app(str(short_run), cfg, api_key=KEY)
    srv = Server(app)
    yield srv
    srv.stop()


def _chat(client, text: str, **kw):
    return client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": text}], max_tokens=12, **kw
    )


def test_models_health_and_a_chat_completion(server, network_attempts):
    client = server.client()
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"  # no key needed
    reply = _chat(client, "我叫张三")
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert 0 < reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 0
    assert isinstance(reply.choices[0].message.content, str)
    assert network_attempts == []


def test_streaming_gives_the_same_text_as_a_plain_request(server):
    client = server.client()
    plain = _chat(client, "住在北京市朝阳区").choices[0].message.content
    stream = _chat(client, "住在北京市朝阳区", stream=True)
    pieces, finish = [], None
    for chunk in stream:
        pieces.append(chunk.choices[0].delta.content or "")
        finish = chunk.choices[0].finish_reason or finish
    assert "".join(pieces).strip() == plain and finish in ("stop", "length")


def test_json_schema_response_format_is_enforced(server):
    reply = server.client().chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "邮箱zhangsan@qq.com"}],
        max_tokens=64,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SHORT}},
    )
    answer = json.loads(reply.choices[0].message.content)
    assert list(answer) == ["name", "email", "vip"] and isinstance(answer["vip"], bool)


def test_extract_endpoint_answers_with_the_runs_schema(server):
    r = httpx.post(
        f"{server.url}/v1/extract",
        json={"text": "我叫王五，邮箱w5@qq.com"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    body = r.json()
    assert r.status_code == 200 and body["error"] is None
    assert list(body["output"]) == ["name", "email", "vip"]
    assert set(body["spans"]) == {"name", "email"}  # copied from the input (schema.json)
    for key, span in body["spans"].items():
        value = body["output"][key]
        assert span is None if not value else "我叫王五，邮箱w5@qq.com"[span[0] : span[1]] == value


def test_auth_failures_are_401(server):
    with pytest.raises(openai.AuthenticationError):
        server.client(key="wrong").models.list()
    r = httpx.post(f"{server.url}/v1/chat/completions", json={"messages": []})
    assert r.status_code == 401 and "API key" in r.json()["error"]["message"]


def test_limits_and_malformed_requests(server):
    client = server.client()
    with pytest.raises(openai.UnprocessableEntityError) as bad:
        client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert "temperature" in str(bad.value) and "Traceback" not in str(bad.value)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    capped = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "x"}], max_tokens=100000
    )
    assert capped.usage.completion_tokens <= 64
    big = httpx.post(
        f"{server.url}/v1/chat/completions",
        content=b"x" * 10000,
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert big.status_code == 413
    broken = httpx.post(
        f"{server.url}/v1/chat/completions",
        content=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert broken.status_code == 422 and "Traceback" not in broken.text


def test_concurrent_requests_are_batched(server):
    client = server.client()
    texts = [f"我叫用户{i}，邮箱u{i}@qq.com" for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda t: _chat(client, t), texts))
    assert all(r.choices[0].message.content is not None for r in replies)
    metrics = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    batches = float(metrics.split("slmtune_batch_size_count ")[1].split()[0])
    requests = float(metrics.split("slmtune_batch_size_sum ")[1].split()[0])
    assert requests > batches  # some generate() call served more than one request
    assert "slmtune_request_seconds_bucket" in metrics


def test_a_full_queue_answers_503(short_run):
    cfg = ServeConfig(name="tiny", max_batch=1, max_queue=1, max_wait_ms=0)
    app, _ = build_app(str(short_run), cfg)
    srv = Server(app)
    try:
        client = srv.client(key=None)
        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(lambda i: _try(client, i), range(12)))
    finally:
        srv.stop()
    assert "busy" in outcomes and "ok" in outcomes


def _try(client, i: int) -> str:
    try:
        _chat(client, f"请求{i}")
        return "ok"
    except openai.APIStatusError as e:
        return "busy" if e.status_code == 503 else f"status {e.status_code}"


def test_adapters_on_one_base_answer_as_their_runs(tiny_run, tmp_path, monkeypatch):
    # Exact in fp32 layers only: bf16 copies round a merged run's weights and an unmerged
    # base + LoRA differently, and the random tiny model's near-tie tokens then flip.
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "head")
    other = _second_run(tiny_run, tmp_path)
    averaged = average([str(tiny_run), str(other)], str(tmp_path / "avg"))  # rank 16 beside 8s
    adapters = [f"b={other}", f"avg={averaged}"]
    app, pool = build_app(str(tiny_run), ServeConfig(name="a"), adapters=adapters)
    srv = Server(app)
    texts = ["我叫张三", "邮箱zhangsan@qq.com", "hello"]
    try:
        client = srv.client(key=None)
        assert sorted(m.id for m in client.models.list().data) == ["a", "avg", "b"]
        served = {name: [_answer(client, name, t) for t in texts] for name in ("a", "b", "avg")}
    finally:
        srv.stop()
    for name, run in (("a", tiny_run), ("b", other), ("avg", averaged)):
        opened = open_run(str(run))
        requests = [Request(opened.prompt(t), max_new_tokens=12) for t in texts]
        alone = [a.text for a in answer_all(opened, requests, batch_size=1)]
        assert served[name] == alone, name
    assert served["a"] != served["b"]


def _answer(client, model: str, text: str) -> str:
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], max_tokens=12
    )
    return reply.choices[0].message.content


def _second_run(tiny_run, tmp_path):
    cfg = TrainConfig.model_validate(
        {**json.loads(json.dumps(_config(tiny_run))), "out": str(tmp_path / "run_b"),
         "lr": 3e-2, "max_steps": 4}
    )  # fmt: skip
    return train(cfg)


def _config(run):
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


def test_public_bind_without_a_key_is_refused(tiny_run):
    with pytest.raises(ConfigError, match="--api-key"):
        build_app(str(tiny_run), ServeConfig(host="0.0.0.0"))
