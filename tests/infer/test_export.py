"""`slmtune export`: merged model loads in stock transformers and answers like the adapter run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from slmtune.errors import ConfigError
from slmtune.export import export
from slmtune.run import RunDir, open_renderer

PROMPTS = ["我叫张三，邮箱zhangsan@qq.com", "住在北京市朝阳区建国路88号", "hello there", "停电了"]

STOCK = """
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
path, system, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path)
answers = []
for text in prompts:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True,
                                  return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=12)
    answers.append(out[0, ids["input_ids"].shape[1]:].tolist())
assert "slmtune" not in sys.modules
print(json.dumps({"answers": answers, "dtype": str(model.dtype)}))
"""


def _adapter_answers(run, prompts) -> list[list[int]]:
    """Greedy tokens from the run's base + *unmerged* LoRA adapter, prompts from our renderer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loaded = open_renderer(str(run))
    base = AutoModelForCausalLM.from_pretrained(RunDir(run).read_meta()["base_model"])
    model = PeftModel.from_pretrained(base, run / "adapter").eval()
    stops = loaded.renderer.stop_token_ids
    answers = []
    for text in prompts:
        ids, _ = loaded.renderer.prompt_ids(loaded.prompt(text))
        with torch.inference_mode():
            out = model.generate(
                input_ids=torch.tensor([ids]),
                max_new_tokens=12,
                do_sample=False,
                eos_token_id=stops,
                pad_token_id=loaded.tokenizer.pad_token_id,
            )
        answers.append(out[0, len(ids) :].tolist())
    return answers


def test_merged_export_answers_like_the_adapter_in_stock_transformers(tiny_run, tmp_path):
    out = export(str(tiny_run), str(tmp_path / "exported"), dtype="fp32")
    for name in ("model.safetensors", "config.json", "chat_template.jinja", "schema.json"):
        assert (out / name).is_file(), name
    system = RunDir(tiny_run).read_meta()["system_prompt"]
    stock = subprocess.run(
        [sys.executable, "-c", STOCK, str(out), system, json.dumps(PROMPTS, ensure_ascii=False)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(stock.stdout.strip().splitlines()[-1])
    assert result["dtype"] == "torch.float32"
    assert result["answers"] == _adapter_answers(tiny_run, PROMPTS)


def test_bf16_export_and_refusals(tiny_run, tmp_path):
    out = export(str(tiny_run), str(tmp_path / "bf16"), dtype="bf16")
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    with pytest.raises(ConfigError, match="not empty"):
        export(str(tiny_run), str(out), dtype="bf16")
    with pytest.raises(ConfigError, match="--dtype int4"):
        export(str(tiny_run), str(tmp_path / "x"), dtype="int4")
    with pytest.raises(ConfigError, match="not a finished run"):
        export(str(tmp_path), str(tmp_path / "y"))
