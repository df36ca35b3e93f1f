"""End to end on the real embedded model (Gemma-3-270M): minutes on 2 cores, so `slow`.

Everything here runs with every non-loopback connection refused (tests/conftest.py), and
asserts that nothing even tried: model preparation, training and predict never phone home.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slmtune.cli import app
from slmtune.config import TrainConfig
from slmtune.data.synth import synthesize, write_jsonl
from slmtune.infer.driver import Request, answer_all
from slmtune.models import resolve_model
from slmtune.run import open_run
from slmtune.train.train import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    write_jsonl(synthesize("complaints", 64, seed=7), tmp / "train.jsonl")
    write_jsonl(synthesize("complaints", 4, seed=8), tmp / "test.jsonl")
    cfg = TrainConfig(
        data=str(tmp / "train.jsonl"),
        out=str(tmp / "run"),
        max_steps=6,
        batch_size=4,
        grad_accum=2,
        lr=5e-4,
        lora_r=8,
        save_steps=100,
    )
    run = train(cfg)
    return tmp, run


def test_model_preparation_training_and_predict_never_phone_home(trained_run, network_attempts):
    tmp, run = trained_run
    resolve_model("gemma-3-270m")
    opened = open_run(str(run))
    text = json.loads((tmp / "test.jsonl").read_text().splitlines()[0])["instruction"]
    answer_all(opened, [Request(opened.prompt(text), max_new_tokens=8)], batch_size=1)
    assert network_attempts == []


def test_lora_training_lowers_the_loss_and_saves_the_adapter(trained_run):
    _, run = trained_run
    logged = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logged if "loss" in r]
    assert len(losses) == 6
    assert sum(losses[-2:]) / 2 < 0.7 * sum(losses[:2]) / 2, losses
    assert (run / "adapter" / "adapter_model.safetensors").stat().st_size > 100_000


def test_the_adapter_changes_what_the_model_says(trained_run):
    tmp, run = trained_run
    records = [json.loads(line) for line in (tmp / "test.jsonl").read_text().splitlines()]
    tuned = open_run(str(run))
    base = open_run(str(run), base_only=True)
    requests = [Request(tuned.prompt(r["instruction"]), max_new_tokens=40) for r in records]
    tuned_out = [a.text for a in answer_all(tuned, requests, batch_size=4)]
    base_out = [a.text for a in answer_all(base, requests, batch_size=4)]
    assert tuned_out != base_out
    assert sum(a.lstrip().startswith("{") for a in tuned_out) >= 3, tuned_out


def test_cli_predict_on_the_run(trained_run):
    tmp, run = trained_run
    text = json.loads((tmp / "test.jsonl").read_text().splitlines()[1])["instruction"]
    result = CliRunner().invoke(
        app, ["predict", str(run), "--text", text, "--max-new-tokens", "40"]
    )
    assert result.exit_code == 0, result.output
    assert "{" in result.output


def test_extract_on_the_real_model_gives_schema_shaped_answers(trained_run, network_attempts):
    from slmtune.config import ExtractConfig
    from slmtune.infer.extract import extract

    tmp, run = trained_run
    schema = json.loads((run / "schema.json").read_text())
    assert schema["required"] == ["name", "address", "email", "question"]
    records = [json.loads(line) for line in (tmp / "test.jsonl").read_text().splitlines()]
    src = tmp / "extract_in.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": i, "text": r["instruction"]}, ensure_ascii=False) + "\n"
            for i, r in enumerate(records)
        )
    )
    out = tmp / "extract_out.jsonl"
    settings = ExtractConfig(max_new_tokens=160, batch_size=4)
    summary = extract(str(run), str(src), str(out), settings, quiet=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == list(range(len(records)))
    answered = [r for r in rows if r["error"] is None]
    assert answered, rows  # six training steps already give JSON under the grammar
    for r in answered:
        assert list(r["output"]) == schema["required"]
    for r in rows:  # the only failure a constrained answer can have is running out of tokens
        assert r["error"] is None or r["error"]["kind"] == "max_new_tokens"
    assert summary["records"] == len(records)
    assert network_attempts == []
