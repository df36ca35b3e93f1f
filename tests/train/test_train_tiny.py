"""train() end to end on a tiny model built from a config: run directory, resume, errors."""

from __future__ import annotations

import json

import pytest

from slmtune.config import TrainConfig
from slmtune.errors import ConfigError, DataError
from slmtune.run import RUN_FILE, open_run
from slmtune.train.train import train
from tests.tiny import tiny_model_dir


def _write_data(path, n=12):
    rows = [
        {
            "system": "提取json",
            "instruction": f"我叫用户{i}，邮箱u{i}@qq.com",
            "input": "",
            "output": json.dumps({"name": f"用户{i}", "email": f"u{i}@qq.com"}, ensure_ascii=False),
        }
        for i in range(n)
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    return path


@pytest.fixture
def model_dir(tmp_path):
    return tiny_model_dir(tmp_path / "model", "gemma3_text", None)


def _cfg(tmp_path, model_dir, **kw):
    base = dict(
        model=str(model_dir),
        data=str(_write_data(tmp_path / "train.jsonl")),
        out=str(tmp_path / "run"),
        max_steps=4,
        batch_size=2,
        grad_accum=2,
        lr=1e-3,
        save_steps=2,
        max_length=128,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_writes_a_complete_run_directory(tmp_path, model_dir):
    run = train(_cfg(tmp_path, model_dir))
    for name in ("config.yaml", RUN_FILE, "train_log.jsonl", "loss.png", "summary.json"):
        assert (run / name).is_file(), name
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert (run / "tokenizer" / "tokenizer_config.json").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4
    assert summary["tokens"] > 0 and summary["tokens_per_second"] > 0
    meta = json.loads((run / RUN_FILE).read_text())
    assert meta["template"] == "gemma" and meta["system_prompt"] == "提取json"
    logged = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if "loss" in r] == [1, 2, 3, 4]
    # the run opens for inference with the adapter merged
    loaded = open_run(str(run))
    assert loaded.system_prompt == "提取json"


def test_resume_continues_from_the_last_checkpoint(tmp_path, model_dir):
    cfg = _cfg(tmp_path, model_dir, max_steps=2)
    train(cfg)
    (tmp_path / "run" / RUN_FILE).unlink()  # as if it had been killed after the checkpoint
    resumed = train(_cfg(tmp_path, model_dir, max_steps=4, resume=True))
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["steps"] == 4


def test_existing_run_is_not_overwritten(tmp_path, model_dir):
    train(_cfg(tmp_path, model_dir, max_steps=1))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_cfg(tmp_path, model_dir, max_steps=1))


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, model_dir):
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(_cfg(tmp_path, model_dir, resume=True))


def test_zero_trained_tokens_fails_loudly(tmp_path, model_dir):
    # max_length so small that only the prompt scaffolding fits: nothing would be learned
    with pytest.raises(DataError, match="zero trained tokens"):
        train(_cfg(tmp_path, model_dir, max_length=9))


def test_qlora_is_not_offered_under_a_false_name():
    from slmtune.config import load_config

    with pytest.raises(ConfigError, match="--method: Input should be 'lora' or 'full'"):
        load_config(TrainConfig, None, {"data": "x.jsonl", "method": "qlora"})


def test_full_fine_tune_saves_a_plain_model(tmp_path, model_dir):
    run = train(_cfg(tmp_path, model_dir, method="full", max_steps=1))
    assert (run / "model" / "config.json").is_file()
    assert not (run / "adapter").exists()


def test_tensorboard_logs_stay_in_the_run_directory(tmp_path, model_dir, network_attempts):
    run = train(_cfg(tmp_path, model_dir, max_steps=2, report_to="tensorboard"))
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))
    assert network_attempts == []


def test_eval_ratio_holds_out_records_and_logs_eval_loss(tmp_path, model_dir):
    run = train(_cfg(tmp_path, model_dir, max_steps=2, eval_ratio=0.25))
    summary = json.loads((run / "summary.json").read_text())
    assert summary["final_eval_loss"] is not None


def test_bf16_base_keeps_the_trainable_lora_weights_fp32(tmp_path, model_dir):
    import math

    import torch

    from slmtune.models import load_model
    from slmtune.train.train import _base_dtype, attach_method

    cfg = _cfg(tmp_path, model_dir, dtype="bfloat16")
    assert _base_dtype(cfg) == "bfloat16"
    assert _base_dtype(_cfg(tmp_path, model_dir, dtype="bfloat16", bf16_base=False)) == "float32"
    assert _base_dtype(_cfg(tmp_path, model_dir, dtype="float32")) == "float32"
    assert _base_dtype(_cfg(tmp_path, model_dir, dtype="bfloat16", method="full")) == "float32"
    model = attach_method(load_model(model_dir, dtype=_base_dtype(cfg)), cfg)
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = [p for p in model.parameters() if not p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    assert frozen and all(p.dtype == torch.bfloat16 for p in frozen)
    summary = json.loads((train(cfg) / "summary.json").read_text())
    assert math.isfinite(summary["final_loss"])
