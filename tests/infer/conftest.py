"""A tiny trained run shared by the inference tests (training it takes a few seconds)."""

from __future__ import annotations

import json

import pytest

from slmtune.config import TrainConfig
from slmtune.train.run import train
from tests.tiny import tiny_model_dir


def complaint_rows(n: int) -> list[dict]:
    return [
        {
            "system": "提取json",
            "instruction": f"我叫用户{i}，邮箱u{i}@qq.com",
            "input": "",
            "output": json.dumps(
                {"name": f"用户{i}", "email": f"u{i}@qq.com", "vip": i % 2 == 0},
                ensure_ascii=False,
            ),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_run")
    model = tiny_model_dir(root / "model", "gemma3_text", None)
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in complaint_rows(16)))
    cfg = TrainConfig(
        model=str(model),
        data=str(data),
        out=str(root / "run"),
        max_steps=2,
        batch_size=4,
        grad_accum=1,
        lr=1e-3,
        max_length=128,
    )
    return train(cfg)
