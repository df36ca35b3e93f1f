"""Open a run (or any model reference) the way every later command needs it.

`open_run` gives weights + tokenizer + renderer + the run's defaults (system prompt, answer
schema); `open_renderer` the same without weights. Both go through `model_renderer`, the
one place a model's tokenizer gets its chat template, so predict, chat, eval, extract,
serve and `data show` render prompts exactly as training did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from slmtune.chat import ChatRenderer, choose_template, install_template
from slmtune.config import DEFAULT_MAX_LENGTH
from slmtune.data.types import Message
from slmtune.errors import ModelError
from slmtune.models import load_model, load_tokenizer, resolve_model
from slmtune.run.layout import RunDir, is_run_dir
from slmtune.run.schema import run_schema


@dataclass
class OpenRun:
    """A run or model opened for answering, with the renderer and defaults it was trained with."""

    name: str
    model: object | None  # None when opened without weights (open_renderer)
    tokenizer: object
    renderer: ChatRenderer
    system_prompt: str | None = None
    meta: dict = field(default_factory=dict)
    schema: dict | None = None  # the run's answer schema (JSON tasks), see run/schema.py
    cache: dict = field(default_factory=dict)  # compiled grammars etc., per model

    def prompt(self, messages: str | list[Message], system: str | None = None) -> list[Message]:
        """The messages to answer: a bare text becomes a user turn. `system` replaces any
        system prompt; otherwise a prompt without one gets the run's, as in training."""
        if isinstance(messages, str):
            messages = [Message("user", messages)]
        if system is not None:
            rest = [m for m in messages if m.role != "system"]
            return [Message("system", system), *rest] if system else rest
        if self.system_prompt and not any(m.role == "system" for m in messages):
            return [Message("system", self.system_prompt), *messages]
        return list(messages)


def model_renderer(
    model_path: Path,
    template: str = "auto",
    max_length: int = DEFAULT_MAX_LENGTH,
    last_turn_only: bool = False,
) -> tuple[object, str, ChatRenderer]:
    """A resolved model's tokenizer with its chat template installed: (tokenizer, template
    name, renderer). Training and every command that opens a plain model go through here."""
    tokenizer = load_tokenizer(model_path)
    name = choose_template(tokenizer, model_type(model_path), template)
    install_template(tokenizer, name)
    renderer = ChatRenderer(tokenizer, max_length=max_length, last_turn_only=last_turn_only)
    return tokenizer, name, renderer


def model_type(model_path: Path) -> str:
    return json.loads((Path(model_path) / "config.json").read_text()).get("model_type", "")


def open_renderer(ref: str, *, template: str = "auto", max_length: int | None = None) -> OpenRun:
    """Tokenizer, chat template, system prompt and schema of a run or model; no weights.

    For a run, its own template and max length (`max_length` overrides the length)."""
    if not is_run_dir(ref):
        path = resolve_model(ref)
        tokenizer, name, renderer = model_renderer(path, template, max_length or DEFAULT_MAX_LENGTH)
        return OpenRun(
            ref, None, tokenizer, renderer, meta={"template": name, "base_model": str(path)}
        )
    run = RunDir(ref)
    meta = run.read_meta()
    if not (Path(meta["base_model"]) / "config.json").exists():  # run copied from elsewhere
        meta["base_model"] = str(resolve_model(meta["model_ref"]))
    tokenizer = load_tokenizer(run.tokenizer)  # saved with the training template on it
    renderer = ChatRenderer(
        tokenizer,
        max_length=max_length or meta.get("max_length", DEFAULT_MAX_LENGTH),
        last_turn_only=meta.get("last_turn_only", False),  # tokenize prompts as in training
    )
    return OpenRun(
        str(ref), None, tokenizer, renderer, meta.get("system_prompt"), meta, run_schema(run.path)
    )


def open_run(
    ref: str,
    *,
    base_only: bool = False,
    dtype: str = "float32",
    device: str | None = None,
) -> OpenRun:
    """Open a run directory (adapter merged onto its base) or any model reference.

    base_only: for a run, load its base model but keep the run's tokenizer, template and
    system prompt, so base and fine-tuned are compared on identical prompts.
    """
    opened = open_renderer(ref)
    meta = opened.meta
    if meta.get("method") == "full" and not base_only:
        model = load_model(RunDir(ref).model, dtype=dtype, device=device)
    else:
        model = load_model(Path(meta["base_model"]), dtype=dtype, device=device)
        if is_run_dir(ref) and not base_only:
            model = _merge_adapter(model, RunDir(ref).adapter)
    opened.model = model.eval()
    if base_only:
        opened.name = f"{ref} (base)"
    return opened


def _merge_adapter(model, adapter_dir: Path):
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelError(f"{adapter_dir}: no adapter found; is the run complete?")
    # Merging the LoRA into the weights makes generation as fast as the base model.
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
