"""`slmtune label` against real HTTP teachers on loopback (slmtune/label/oracle.py): one that
answers from gold labels, hostile ones (broken JSON, invented values, 429s, timeouts), and
`slmtune serve` of a trained run."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fastapi.responses import JSONResponse
from typer.testing import CliRunner

from slmtune.cli import app
from slmtune.config import LabelConfig
from slmtune.data.load import load_examples
from slmtune.label.label import label
from slmtune.label.oracle import oracle_app
from tests.conftest import complaint_rows
from tests.serve.harness import Server
from tests.tiny import SHORT_SCHEMA

SECRET = "sk-test-0123456789abcdef"  # must reach the teacher and nothing else


def raw_and_gold(n: int, tmp_path):
    rows = complaint_rows(n)
    raw = tmp_path / "raw.jsonl"
    raw.write_text(
        "".join(
            json.dumps({"id": f"r{i}", "text": r["instruction"]}) + "\n" for i, r in enumerate(rows)
        )
    )
    return raw, {r["instruction"]: r["output"] for r in rows}


def config(server, **extra) -> LabelConfig:
    values = {"teacher_url": f"{server.url}/v1", "teacher_model": "oracle", "system": "提取json"}
    return LabelConfig(**{**values, **extra})


@pytest.fixture
def teacher():
    servers = []

    def start(gold, fault=None, delay=0.0):
        servers.append(Server(oracle_app(gold, fault, delay)))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_labels_land_with_a_learned_schema_and_the_key_stays_secret(
    tmp_path, teacher, monkeypatch, capsys
):
    raw, gold = raw_and_gold(20, tmp_path)
    server = teacher(gold)
    monkeypatch.setenv("TEACHER_KEY", SECRET)
    out = tmp_path / "labelled.jsonl"
    summary = label(
        str(raw), str(out), config(server, api_key_env="TEACHER_KEY", price_in=2.0, price_out=8.0)
    )

    rows = lines(out)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(20)]
    assert all(gold[r["instruction"]] == r["output"] for r in rows)
    assert len(load_examples(out).examples) == 20  # ready for `slmtune train`
    schema = json.loads((tmp_path / "labelled.jsonl.schema.json").read_text())
    assert schema["properties"]["name"]["verbatim"] and schema["properties"]["email"]["verbatim"]
    assert "verbatim" not in schema["properties"]["vip"]
    assert (summary["labelled"], summary["rejected"], summary["requests"]) == (20, 0, 20)
    tokens_in = sum(len("提取json") + len(t) for t in gold)
    assert summary["tokens_in"] == tokens_in  # the oracle counts characters as tokens
    assert summary["cost"] == pytest.approx((tokens_in * 2 + summary["tokens_out"] * 8) / 1e6)

    assert server.server.config.app.state.authorization == [f"Bearer {SECRET}"] * 20
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_bad_answers_are_rejected_with_their_reason_and_retried(tmp_path, teacher):
    raw, gold = raw_and_gold(8, tmp_path)
    texts = list(gold)
    with raw.open("a") as f:
        f.write(json.dumps({"id": "no-text", "body": "x"}) + "\n")
    seen: dict[str, int] = {}

    async def fault(text, number):
        seen[text] = seen.get(text, 0) + 1
        if text == texts[0]:
            return "{not json"
        if text == texts[1]:
            return json.dumps({"name": "王小明", "email": "u1@qq.com", "vip": False})  # invented
        if text == texts[2]:
            return json.dumps({"name": "用户2"})  # keys missing
        if text == texts[3]:
            return JSONResponse({"error": "busy"}, 429, headers={"retry-after-ms": "5"})
        if text == texts[4] and seen[text] == 1:
            return JSONResponse({"error": "busy"}, 429, headers={"retry-after-ms": "5"})
        if text == texts[5] and seen[text] == 1:
            await asyncio.sleep(2)  # past --timeout: retried
        if text == texts[6] and seen[text] == 1:
            return "```json\n{broken"  # asked once more, then fine
        return None

    server = teacher(gold, fault)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({**SHORT_SCHEMA, "properties": {
        "name": {"type": "string", "verbatim": True},
        "email": {"type": "string", "verbatim": True},
        "vip": {"type": "boolean"},
    }}))  # fmt: skip
    out = tmp_path / "labelled.jsonl"
    cfg = config(server, schema_file=str(schema), retries=2, timeout=0.5)
    summary = label(str(raw), str(out), cfg)

    labelled = lines(out)
    rejects = {r["id"]: r for r in lines(tmp_path / "labelled.rejects.jsonl")}
    assert [r["id"] for r in labelled] == ["r4", "r5", "r6", "r7"]
    assert {k: r["reason"] for k, r in rejects.items()} == {
        "r0": "invalid_json",
        "r1": "ungrounded",
        "r2": "schema_mismatch",
        "r3": "teacher_error",
        "no-text": "missing_field",
    }
    assert "name" in rejects["r1"]["message"] and rejects["r1"]["raw"]
    assert rejects["r2"]["message"].startswith("answer: 'email' is a required property")
    assert rejects["r0"]["text"] == texts[0]  # nothing the user gave is lost
    assert seen[texts[0]] == 2  # an invalid answer is asked for once more
    assert seen[texts[1]] == 1  # an invented value is not
    assert seen[texts[3]] == 3  # 429: the client's retries (2), then given up
    assert seen[texts[4]] == 2 and seen[texts[5]] == 2 and seen[texts[6]] == 2
    assert summary["rejected_by_reason"] == {
        "invalid_json": 1, "missing_field": 1, "schema_mismatch": 1, "teacher_error": 1, "ungrounded": 1
    }  # fmt: skip


def test_concurrency_is_bounded(tmp_path, teacher):
    raw, gold = raw_and_gold(12, tmp_path)
    server = teacher(gold, delay=0.1)
    label(str(raw), str(tmp_path / "out.jsonl"), config(server, concurrency=3))
    state = server.server.config.app.state
    assert state.requests == 12
    assert 2 <= state.most_in_flight <= 3


def test_kill_and_resume_gives_each_record_exactly_once(tmp_path, teacher):
    raw, gold = raw_and_gold(40, tmp_path)
    texts = list(gold)

    async def fault(text, number):
        if text in (texts[5], texts[17], texts[30]):
            return "not json"  # some records go to the rejects file: both files resume
        return None

    server = teacher(gold, fault, delay=0.05)
    out = tmp_path / "labelled.jsonl"
    command = [
        sys.executable, "-m", "slmtune.cli", "label", "--input", str(raw), "--output", str(out),
        "--teacher-url", f"{server.url}/v1", "--teacher-model", "oracle", "--system", "提取json",
        "--concurrency", "2",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rejects = tmp_path / "labelled.rejects.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        written = sum(len(p.read_bytes().splitlines()) for p in (out, rejects) if p.exists())
        if written >= 20:
            break
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert 20 <= written < 40, "the job should have been killed midway"

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ids = [r["id"] for r in lines(out)] + [r["id"] for r in lines(rejects)]
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"r{i}" for i in range(40)]
    assert len(set(ids)) == 40
    assert [r["id"] for r in lines(rejects)] == ["r5", "r17", "r30"]
    assert [r["id"] for r in lines(out)] == [f"r{i}" for i in range(40) if i not in (5, 17, 30)]


def test_serve_of_a_trained_run_is_a_teacher_unchanged(tmp_path, short_run, teacher):
    from slmtune.config import ServeConfig
    from slmtune.serve.server import build_app

    raw, _gold = raw_and_gold(4, tmp_path)
    server = Server(build_app(str(short_run), ServeConfig(name="tiny"))[0])
    try:
        cfg = LabelConfig(
            teacher_url=f"{server.url}/v1",
            teacher_model="tiny",
            system="提取json",
            schema_file=str(short_run / "schema.json"),
            max_tokens=64,
        )
        summary = label(str(raw), str(tmp_path / "out.jsonl"), cfg, quiet=True)
    finally:
        server.stop()
    assert summary["labelled"] + summary["rejected"] == 4
    # The server constrains its answers to the schema: whatever the tiny model says parses
    # and validates; only grounding (checked here, not enforced there) may reject.
    assert set(summary["rejected_by_reason"]) <= {"ungrounded"}


def test_cli_errors_name_the_flag(tmp_path, monkeypatch):
    raw, _ = raw_and_gold(2, tmp_path)
    runner = CliRunner()
    base = ["label", "--input", str(raw), "--output", str(tmp_path / "o.jsonl")]
    result = runner.invoke(app, [*base, "--teacher-model", "m", "--system", "s"])
    assert result.exit_code != 0 and "--teacher-url: Field required" in result.output
    teacher_flags = [
        "--teacher-url",
        "http://127.0.0.1:9/v1",
        "--teacher-model",
        "m",
        "--system",
        "s",
    ]
    result = runner.invoke(app, [*base, *teacher_flags, "--select", "diverse"])
    assert "--select needs --budget" in result.output
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    result = runner.invoke(app, [*base, *teacher_flags, "--api-key-env", "NO_SUCH_KEY_VAR"])
    assert result.exit_code != 0
    assert "--api-key-env NO_SUCH_KEY_VAR: that environment variable is not set" in result.output
    assert not (tmp_path / "o.jsonl").exists()  # nothing written before the checks pass


def test_rpm_limiter_is_asked_before_every_http_attempt_retries_included(
    tmp_path, teacher, monkeypatch
):
    import aiolimiter

    acquired = []

    class CountingLimiter(aiolimiter.AsyncLimiter):
        async def acquire(self, amount: float = 1) -> None:
            acquired.append(amount)
            await super().acquire(amount)

    monkeypatch.setattr(aiolimiter, "AsyncLimiter", CountingLimiter)
    raw, gold = raw_and_gold(3, tmp_path)
    seen: dict[str, int] = {}

    async def fault(text, number):
        seen[text] = seen.get(text, 0) + 1
        if seen[text] == 1:
            return JSONResponse({"error": "busy"}, 429, headers={"retry-after-ms": "5"})
        return None

    server = teacher(gold, fault)
    summary = label(str(raw), str(tmp_path / "out.jsonl"), config(server, rpm=600), quiet=True)
    assert summary["labelled"] == 3
    assert len(acquired) == server.server.config.app.state.requests == 6
