"""A run directory: what training writes and what every later command reads.

    RUN/config.yaml         resolved training config
    RUN/adapter/            LoRA adapter (method lora/qlora)   | RUN/model/ full weights
    RUN/tokenizer/          tokenizer with the chat template used in training
    RUN/schema.json         JSON Schema of the answers (JSON tasks), for constrained decoding
    RUN/slmtune_run.json    base model, template, system prompt ... (written last: a run
                            without it did not finish)
    RUN/train_log.jsonl, loss.png, summary.json, checkpoints/

`load_for_inference` opens a run (adapter on its base) or a plain model the same way, so
predict, chat, eval, extract and serve render prompts exactly as training did.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from slmtune.chat import ChatRenderer, choose_template, install_template
from slmtune.errors import ModelError
from slmtune.infer.schema import run_schema
from slmtune.models import load_model, load_tokenizer, resolve_model

RUN_FILE = "slmtune_run.json"


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / RUN_FILE).is_file()


def save_run_files(run_dir: Path, *, model, tokenizer, meta: dict) -> None:
    if hasattr(model, "peft_config"):
        model.save_pretrained(run_dir / "adapter")
    else:
        model.save_pretrained(run_dir / "model")
        tokenizer.save_pretrained(run_dir / "model")
    tokenizer.save_pretrained(run_dir / "tokenizer")
    tmp = run_dir / f"{RUN_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=2, ensure_ascii=False))
    os.replace(tmp, run_dir / RUN_FILE)


def read_run_meta(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / RUN_FILE).read_text())


@dataclass
class Loaded:
    """A model ready to generate, with the renderer and defaults it was trained with."""

    name: str
    model: object
    tokenizer: object
    renderer: ChatRenderer
    system_prompt: str | None = None
    meta: dict = field(default_factory=dict)
    schema: dict | None = None  # the run's answer schema (JSON tasks), see infer/schema.py
    cache: dict = field(default_factory=dict)  # compiled grammars etc., per model


def load_for_inference(
    ref: str,
    *,
    base_only: bool = False,
    template: str = "auto",
    max_length: int | None = None,
    dtype: str = "float32",
    device: str | None = None,
) -> Loaded:
    """Open a run directory (adapter merged onto its base) or any model reference.

    base_only: for a run, load its base model but keep the run's tokenizer, template and
    system prompt, so base and fine-tuned are compared on identical prompts.
    """
    loaded = load_renderer_only(ref, template=template, max_length=max_length)
    meta = loaded.meta
    if meta.get("method") == "full" and not base_only:
        model = load_model(Path(ref) / "model", dtype=dtype, device=device)
    else:
        model = load_model(Path(meta["base_model"]), dtype=dtype, device=device)
        if is_run_dir(ref) and not base_only:
            model = _merge_adapter(model, Path(ref) / "adapter")
    loaded.model = model.eval()
    if base_only:
        loaded.name = f"{ref} (base)"
    return loaded


def load_renderer_only(ref: str, *, template: str = "auto", max_length: int | None = None):
    """Tokenizer, chat template, system prompt and schema of a run or model, no weights."""
    if not is_run_dir(ref):
        path = resolve_model(ref)
        tokenizer = load_tokenizer(path)
        model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
        name = choose_template(tokenizer, model_type, template)
        install_template(tokenizer, name)
        renderer = ChatRenderer(tokenizer, max_length=max_length or 1024)
        meta = {"template": name, "base_model": str(path)}
        return Loaded(ref, None, tokenizer, renderer, meta=meta)
    run_dir = Path(ref)
    meta = read_run_meta(run_dir)
    if not (Path(meta["base_model"]) / "config.json").exists():  # run copied from elsewhere
        meta["base_model"] = str(resolve_model(meta["model_ref"]))
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    renderer = ChatRenderer(
        tokenizer,
        max_length=meta.get("max_length", 1024),
        last_turn_only=meta.get("last_turn_only", False),  # tokenize prompts as in training
    )
    return Loaded(
        str(run_dir),
        None,
        tokenizer,
        renderer,
        meta.get("system_prompt"),
        meta,
        run_schema(run_dir),
    )


def _merge_adapter(model, adapter_dir: Path):
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelError(f"{adapter_dir}: no adapter found; is the run complete?")
    # Merging the LoRA into the weights makes generation as fast as the base model.
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
