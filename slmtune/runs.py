"""A run directory: what training writes and what every later command reads.

    RUN/config.yaml         resolved training config
    RUN/adapter/            LoRA adapter (method lora/qlora)   | RUN/model/ full weights
    RUN/tokenizer/          tokenizer with the chat template used in training
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
    if is_run_dir(ref):
        return _load_run(Path(ref), base_only=base_only, dtype=dtype, device=device)
    path = resolve_model(ref)
    tokenizer = load_tokenizer(path)
    model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    name = choose_template(tokenizer, model_type, template)
    install_template(tokenizer, name)
    model = load_model(path, dtype=dtype, device=device).eval()
    renderer = ChatRenderer(tokenizer, max_length=max_length or 1024)
    return Loaded(ref, model, tokenizer, renderer, meta={"template": name, "base_model": str(path)})


def _load_run(run_dir: Path, *, base_only: bool, dtype: str, device: str | None) -> Loaded:
    meta = read_run_meta(run_dir)
    tokenizer = load_tokenizer(run_dir / "tokenizer")
    renderer = ChatRenderer(
        tokenizer,
        max_length=meta.get("max_length", 1024),
        last_turn_only=meta.get("last_turn_only", False),  # tokenize prompts as in training
    )
    if meta["method"] == "full" and not base_only:
        model = load_model(run_dir / "model", dtype=dtype, device=device)
    else:
        base = Path(meta["base_model"])
        if not (base / "config.json").exists():  # run copied from another machine
            base = resolve_model(meta["model_ref"])
        model = load_model(base, dtype=dtype, device=device)
        if not base_only:
            model = _merge_adapter(model, run_dir / "adapter")
    label = f"{run_dir} (base)" if base_only else str(run_dir)
    return Loaded(label, model.eval(), tokenizer, renderer, meta.get("system_prompt"), meta)


def _merge_adapter(model, adapter_dir: Path):
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").exists():
        raise ModelError(f"{adapter_dir}: no adapter found; is the run complete?")
    # Merging the LoRA into the weights makes generation as fast as the base model.
    return PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
