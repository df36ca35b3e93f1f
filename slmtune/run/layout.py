"""Where a run's files are: the one place their names are written.

RUN/config.yaml         resolved training config
RUN/adapter/            LoRA adapter (method lora)   | RUN/model/ full weights (method full)
RUN/tokenizer/          tokenizer with the chat template used in training
RUN/schema.json         JSON Schema of the answers (JSON tasks), for constrained decoding
RUN/slmtune_run.json    base model, template, system prompt ... (written last: a run
                        without it did not finish)
RUN/train_log.jsonl, loss.png, summary.json, checkpoints/, eval/
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

RUN_FILE = "slmtune_run.json"
SCHEMA_FILE = "schema.json"  # also the name in an exported model directory


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is read or created by making one)."""

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    meta = property(lambda self: self.path / RUN_FILE)
    config = property(lambda self: self.path / "config.yaml")
    adapter = property(lambda self: self.path / "adapter")
    model = property(lambda self: self.path / "model")
    tokenizer = property(lambda self: self.path / "tokenizer")
    schema = property(lambda self: self.path / SCHEMA_FILE)
    checkpoints = property(lambda self: self.path / "checkpoints")
    train_log = property(lambda self: self.path / "train_log.jsonl")
    loss_plot = property(lambda self: self.path / "loss.png")
    summary = property(lambda self: self.path / "summary.json")
    eval = property(lambda self: self.path / "eval")

    def is_finished(self) -> bool:
        return self.meta.is_file()

    def read_meta(self) -> dict:
        return json.loads(self.meta.read_text())


def is_run_dir(path: str | Path) -> bool:
    """A finished run directory (a model reference otherwise)."""
    return RunDir(path).is_finished()


def save_run_files(run_dir: RunDir, *, model, tokenizer, meta: dict) -> None:
    """Weights, tokenizer and then the run file: its presence means the run is complete."""
    if hasattr(model, "peft_config"):
        model.save_pretrained(run_dir.adapter)
    else:
        model.save_pretrained(run_dir.model)
        tokenizer.save_pretrained(run_dir.model)
    tokenizer.save_pretrained(run_dir.tokenizer)
    tmp = run_dir.meta.with_name(f"{RUN_FILE}.tmp")
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    os.replace(tmp, run_dir.meta)
