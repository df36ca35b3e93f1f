"""Typed configs. A YAML file is optional; flags win over it; validation reports every problem.

The resolved config is printed when a run starts and saved into the run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from slmtune.errors import ConfigError

SEED_LORA_TARGETS = "all-linear"


class TrainConfig(BaseModel):
    """Everything `slmtune train` needs. Defaults follow the seeds' recipe where one exists."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field("gemma-3-270m", description="alias, local dir, .gguf or cached hub id")
    data: str = Field(..., description="training data file or directory")
    out: str = Field("runs/latest", description="run directory to write")
    format: str = Field("auto", description="data format: auto, alpaca, sharegpt, messages")
    skip_invalid: bool = Field(False, description="drop invalid records instead of failing")
    template: str = Field("auto", description="chat template: auto, hf, gemma, chatml, qwen3")
    last_turn_only: bool = Field(False, description="train only the final assistant turn")
    max_length: int = Field(1024, gt=8, description="tokens per example (prompt is cut first)")

    method: Literal["lora", "full", "qlora"] = Field("lora", description="what is trained")
    lora_r: int = Field(8, gt=0, description="LoRA rank")
    lora_alpha: int = Field(32, gt=0, description="LoRA alpha (scale = alpha / r)")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="dropout on the LoRA input")
    lora_targets: str = Field(
        SEED_LORA_TARGETS, description="'all-linear' or comma-separated module names"
    )

    epochs: float = Field(3.0, gt=0, description="passes over the data (ignored with max_steps)")
    max_steps: int = Field(-1, description="optimizer steps; -1 means use epochs")
    lr: float = Field(1e-4, gt=0, description="peak learning rate")
    batch_size: int = Field(4, gt=0, description="examples per micro-batch")
    grad_accum: int = Field(4, gt=0, description="micro-batches per optimizer step")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="share of steps spent warming up")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    seed: int = Field(42, description="seed for data order, init and dropout")

    eval_data: str | None = Field(None, description="held-out file for eval loss")
    eval_ratio: float = Field(
        0.0, ge=0, lt=1, description="hold out this share of --data for eval loss"
    )

    # Speed levers (issue: fast training). Each can be switched off to compare.
    packing: bool = Field(
        False,
        description="padding-free packing into one row; off = length-grouped batches (faster on CPU)",
    )
    group_by_length: bool = Field(
        True, description="batch examples of similar length (ignored with packing)"
    )
    labels_only_logits: bool = Field(True, description="compute LM head + loss only where trained")
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="compute dtype: auto = bf16 autocast where supported, else fp32"
    )
    bf16_base: bool = Field(
        True,
        description="with bf16 and LoRA, store the frozen base weights in bf16 (half the "
        "memory, no per-step weight casts); trainable LoRA weights stay fp32",
    )
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 = all cores")

    report_to: Literal["none", "tensorboard", "swanlab"] = Field(
        "none", description="local tracker"
    )
    logging_steps: int = Field(1, gt=0, description="log every N optimizer steps")
    save_steps: int = Field(
        50, gt=0, description="checkpoint every N optimizer steps (for --resume)"
    )
    resume: bool = Field(False, description="continue from the last checkpoint in --out")

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        if self.eval_data and self.eval_ratio:
            raise ValueError("give either eval_data or eval_ratio, not both")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError("max_steps must be a positive number of steps, or -1 to use epochs")
        return self


def load_config(cls: type[BaseModel], yaml_path: str | None, flags: dict[str, Any]) -> BaseModel:
    """Merge a YAML file and explicit flags (flags win) and validate everything at once."""
    values: dict[str, Any] = {}
    if yaml_path:
        path = Path(yaml_path)
        if not path.exists():
            raise ConfigError(f"--config {path}: file not found")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"--config {path}: not valid YAML ({e})") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: expected a mapping of key: value")
        values.update({k.replace("-", "_"): v for k, v in loaded.items()})
    values.update({k: v for k, v in flags.items() if v is not None})
    try:
        return cls(**values)
    except ValidationError as e:
        raise ConfigError(_format_validation(e, yaml_path)) from None


def _format_validation(error: ValidationError, yaml_path: str | None) -> str:
    where = f" (from flags and {yaml_path})" if yaml_path else ""
    lines = [f"{error.error_count()} problem(s) in the configuration{where}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "config"
        flag = "--" + key.replace("_", "-")
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {flag}: {msg}")
    return "\n".join(lines)


def dump_config(config: BaseModel, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True))
