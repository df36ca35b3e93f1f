"""`slmtune extract`: every record once, in order, bad records flagged, resumable after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slmtune.config import ExtractConfig
from slmtune.errors import SlmtuneError
from slmtune.infer.extract import extract
from tests.tiny import SHORT_SCHEMA as SCHEMA


@pytest.fixture
def schema_file(tmp_path):
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(SCHEMA))
    return str(path)


def _texts(n: int) -> list[dict]:
    return [{"id": f"r{i}", "text": f"我叫王{i}，邮箱w{i}@qq.com，住在北京"} for i in range(n)]


def _write_jsonl(path, rows: list[dict]):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def _read(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_record_once_with_bad_records_flagged(tiny_run, tmp_path, schema_file):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(10))
    lines = src.read_text().splitlines()
    lines[2] = "{broken"
    lines[4] = json.dumps({"id": "x", "body": "no text here"})
    lines[6] = json.dumps({"id": "e", "text": "   "})
    lines[8] = json.dumps({"id": "long", "text": "很长的投诉。" * 200})  # > max_length 128
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"id": "b", "text": "\xff\xfe"}\n')
    out = tmp_path / "out.jsonl"
    settings = ExtractConfig(schema_file=schema_file, max_new_tokens=40, batch_size=3)
    summary = extract(str(tiny_run), str(src), str(out), settings, quiet=True)

    rows = _read(out)
    assert [r["line"] for r in rows] == list(range(1, 12))
    kinds = {r["line"]: (r["error"] or {}).get("kind") for r in rows}
    assert kinds[3] == "bad_record" and kinds[11] == "bad_record"  # broken JSON, non-UTF-8
    assert kinds[5] == "missing_field" and "--text-field" in rows[4]["error"]["message"]
    assert kinds[7] == "empty_text"
    assert rows[8]["truncated"] is True and rows[8]["id"] == "long"
    answered = [r for r in rows if r["line"] in (1, 2, 4, 6, 9, 10)]
    for r in answered:
        assert r["error"] is None and list(r["output"]) == ["name", "email", "vip"], r
    assert summary["records"] == 11 and summary["failed"] == 4
    assert summary["failures"] == {"bad_record": 2, "empty_text": 1, "missing_field": 1}
    assert summary["truncated"] == 1 and summary["records_per_second"] > 0


def test_parquet_input_and_id_field(tiny_run, tmp_path, schema_file):
    rows = [{"key": i, "body": r["text"]} for i, r in enumerate(_texts(5))]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    out = tmp_path / "out.jsonl"
    settings = ExtractConfig(text_field="body", id_field="key", schema_file=schema_file)
    extract(str(tiny_run), str(tmp_path / "in.parquet"), str(out), settings, quiet=True)
    result = _read(out)
    assert [r["id"] for r in result] == [0, 1, 2, 3, 4]
    assert all(r["error"] is None for r in result)


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "slmtune.cli", "extract", *args]


def test_kill_9_then_rerun_gives_every_record_exactly_once(tiny_run, tmp_path, schema_file):
    n = 96
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(n))
    out = tmp_path / "out.jsonl"
    args = _cli(str(tiny_run), "--input", str(src), "--output", str(out), "--batch-size", "2")
    args += ["--schema", schema_file, "--max-new-tokens", "40"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.stat().st_size > 0 and len(out.read_bytes().splitlines()) >= 16:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before it could be killed; give it more records"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(_read_complete(out))
    assert 0 < done_before < n

    rerun = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    rows = _read(out)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(n)]  # once each, in input order
    assert [r["line"] for r in rows] == list(range(1, n + 1))
    summary = json.loads((tmp_path / "out.jsonl.state.json").read_text())["summary"]
    assert summary["resumed_after"] >= done_before and summary["records"] == n

    again = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already complete" in again.stdout
    assert _read(out) == rows
    state = json.loads((tmp_path / "out.jsonl.state.json").read_text())
    assert state["summary"] == summary  # the finished job's summary is kept


def _read_complete(path) -> list[dict]:
    data = path.read_bytes()
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def test_torn_last_line_is_repaired_on_resume(tiny_run, tmp_path, schema_file):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(8))
    out = tmp_path / "out.jsonl"
    settings = ExtractConfig(schema_file=schema_file, max_new_tokens=40, batch_size=2)
    extract(str(tiny_run), str(src), str(out), settings, limit=5, quiet=True)
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 10])  # a write cut in the middle of record 5
    extract(str(tiny_run), str(src), str(out), settings, quiet=True)
    assert [r["id"] for r in _read(out)] == [f"r{i}" for i in range(8)]


def test_output_of_another_job_or_file_is_never_touched(tiny_run, tmp_path, schema_file):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(3))
    foreign = tmp_path / "mine.jsonl"
    foreign.write_text("precious\n")
    with pytest.raises(SlmtuneError, match="not written by `slmtune extract`"):
        extract(str(tiny_run), str(src), str(foreign), quiet=True)
    assert foreign.read_text() == "precious\n"

    out = tmp_path / "out.jsonl"
    settings = ExtractConfig(schema_file=schema_file, max_new_tokens=40)
    extract(str(tiny_run), str(src), str(out), settings, quiet=True)
    other = ExtractConfig(schema_file=schema_file, max_new_tokens=40, text_field="body")
    with pytest.raises(SlmtuneError, match="belongs to another job"):
        extract(str(tiny_run), str(src), str(out), other, quiet=True)
    extract(str(tiny_run), str(src), str(out), other, overwrite=True, quiet=True)
    assert all(r["error"]["kind"] == "missing_field" for r in _read(out))


def test_vllm_engine_without_vllm_is_a_clear_error(tiny_run, tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(2))
    args = _cli(str(tiny_run), "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    result = subprocess.run([*args, "--engine", "vllm"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "error: --engine vllm needs" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.jsonl").exists()  # nothing written: a rerun is a fresh job


def test_a_bad_schema_file_fails_before_anything_is_written(tiny_run, tmp_path):
    from slmtune.errors import ConfigError

    src = _write_jsonl(tmp_path / "in.jsonl", _texts(2))
    settings = ExtractConfig(schema_file=str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="missing.json: file not found"):
        extract(str(tiny_run), str(src), str(tmp_path / "o.jsonl"), settings, quiet=True)
    assert not (tmp_path / "o.jsonl").exists()
    assert not (tmp_path / "o.jsonl.state.json").exists()


def test_overwrite_never_deletes_a_file_extract_did_not_write(tiny_run, tmp_path):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(2))
    precious = tmp_path / "precious.jsonl"
    precious.write_text("mine\n")
    with pytest.raises(SlmtuneError, match="not written by `slmtune extract`"):
        extract(str(tiny_run), str(src), str(precious), overwrite=True, quiet=True)
    assert precious.read_text() == "mine\n"


def test_the_same_schema_path_with_new_content_is_another_job(tiny_run, tmp_path, schema_file):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(2))
    out = tmp_path / "out.jsonl"
    settings = ExtractConfig(schema_file=schema_file, max_new_tokens=40)
    extract(str(tiny_run), str(src), str(out), settings, quiet=True)
    schema = json.loads(Path(schema_file).read_text())
    schema["properties"]["name"]["maxLength"] = 2
    Path(schema_file).write_text(json.dumps(schema))
    with pytest.raises(SlmtuneError, match="belongs to another job"):
        extract(str(tiny_run), str(src), str(out), settings, quiet=True)


def test_a_resumed_summary_counts_the_failures_of_the_whole_job(tiny_run, tmp_path, schema_file):
    src = _write_jsonl(tmp_path / "in.jsonl", _texts(6))
    lines = src.read_text().splitlines()
    lines[1] = "{broken"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    settings = ExtractConfig(schema_file=schema_file, max_new_tokens=40, batch_size=2)
    first = extract(str(tiny_run), str(src), str(out), settings, limit=3, quiet=True)
    assert first["failed"] == 1
    resumed = extract(str(tiny_run), str(src), str(out), settings, quiet=True)
    assert resumed["resumed_after"] == 3 and resumed["answered_now"] == 3
    assert resumed["failed"] == 1 and resumed["failures"] == {"bad_record": 1}


def test_verbatim_fields_come_with_their_places_in_the_text(tiny_run, tmp_path):
    grounded = json.loads(json.dumps(SCHEMA))
    for key in ("name", "email"):
        grounded["properties"][key]["verbatim"] = True
    schema = tmp_path / "grounded.json"
    schema.write_text(json.dumps(grounded))
    records = _texts(6)
    src = _write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    extract(str(tiny_run), str(src), str(out),
            ExtractConfig(schema_file=str(schema), max_new_tokens=80), quiet=True)  # fmt: skip
    for record, row in zip(records, _read(out), strict=True):
        assert row["error"] is None and set(row["spans"]) == {"name", "email"}
        for key in ("name", "email"):
            value, span = row["output"][key], row["spans"][key]
            assert value in record["text"]  # copied, never invented
            assert span is None if not value else record["text"][span[0] : span[1]] == value
