"""`slmtune export`: a run as a plain Hugging Face model directory, LoRA merged in.

The directory loads with stock transformers and nothing of slmtune:

    OUT/model.safetensors, config.json        merged weights in the chosen dtype
    OUT/tokenizer files, chat_template.jinja  the template the run was trained with
    OUT/generation_config.json                stops at the template's turn end, greedy
    OUT/schema.json                           the answer schema (JSON tasks), if any
    OUT/README.md                             how to use it, and the run it came from

`tokenizer.apply_chat_template(..., add_generation_prompt=True)` then gives the very prompt
slmtune's renderer builds, so `model.generate` answers as `slmtune predict` does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from slmtune.errors import ConfigError
from slmtune.models.load import DTYPES
from slmtune.run import RUN_FILE, SCHEMA_FILE, is_run_dir, open_run

EXPORT_DTYPES = ("bf16", "fp16", "fp32")


def export(run: str, out: str, dtype: str = "bf16", overwrite: bool = False) -> Path:
    if dtype not in EXPORT_DTYPES:
        raise ConfigError(f"--dtype {dtype}: choose one of {', '.join(EXPORT_DTYPES)}")
    if not is_run_dir(run):
        raise ConfigError(f"{run}: not a finished run directory (no {RUN_FILE})")
    target = Path(out)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise ConfigError(f"--out {target} is not empty; choose another or pass --overwrite")

    opened = open_run(run)  # adapter merged in fp32, then cast once
    model = opened.model.to(DTYPES[dtype])
    generation = model.generation_config
    generation.eos_token_id = opened.renderer.stop_token_ids
    generation.pad_token_id = opened.tokenizer.pad_token_id
    generation.do_sample = False
    for knob in ("temperature", "top_p", "top_k"):
        setattr(generation, knob, None)

    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    opened.tokenizer.save_pretrained(tmp)
    if opened.schema is not None:
        (tmp / SCHEMA_FILE).write_text(json.dumps(opened.schema, indent=2, ensure_ascii=False))
    (tmp / "README.md").write_text(_model_card(run, opened, dtype), encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)  # a half-written export is never left under --out
    return target


def _model_card(run: str, opened, dtype: str) -> str:
    meta = opened.meta
    system = opened.system_prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": "<your text>"}
    ]
    return f"""# Fine-tuned with slmtune

- base model: `{meta.get("model_ref")}` ({meta.get("model_type", "")}), method {meta.get("method")}
- chat template: {meta.get("template")} (in `chat_template.jinja`)
- dtype: {dtype}; exported from run `{Path(run).resolve().name}`
- system prompt used in training: {json.dumps(system, ensure_ascii=False)}

```python
from transformers import AutoModelForCausalLM, AutoTokenizer

tok = AutoTokenizer.from_pretrained("THIS_DIR")
model = AutoModelForCausalLM.from_pretrained("THIS_DIR")
messages = {json.dumps(messages, ensure_ascii=False)}
ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
out = model.generate(**ids, max_new_tokens=256)  # greedy, stops at the turn end
print(tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
```

`schema.json` (if present) is the JSON Schema of the answers, for constrained decoding
(`slmtune serve`, vLLM structured outputs, xgrammar).
"""
