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


def _greedy(model, prompts: list[list[int]], stops: list[int], pad: int) -> list[list[int]]:
    answers = []
    for ids in prompts:
        with torch.inference_mode():
            out = model.generate(input_ids=torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                                 eos_token_id=stops, pad_token_id=pad)  # fmt: skip
        answers.append(out[0, len(ids) :].tolist())
    return answers


@pytest.fixture(scope="module")
def real_vocab_run(tmp_path_factory):
    """tests.tiny.real_vocab_model_dir trained 2 steps: a run llama.cpp's converter takes."""
    from slmtune.config import TrainConfig
    from slmtune.train.train import train
    from tests.conftest import complaint_rows
    from tests.tiny import real_vocab_model_dir

    root = tmp_path_factory.mktemp("real_vocab")
    real_vocab_model_dir(root / "model")
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in complaint_rows(8)))
    cfg = TrainConfig(model=str(root / "model"), data=str(data), out=str(root / "run"),
                      max_steps=2, batch_size=4, grad_accum=1, lr=1e-3, max_length=128)  # fmt: skip
    return train(cfg)


def test_gguf_export_reads_back_with_the_merged_models_greedy_answers(real_vocab_run, tmp_path):
    """llama.cpp's converter writes the GGUF. Read back: its vocabulary (gguf's reader) is the
    run tokenizer's, token for token, with its special ids and chat template; its weights
    (transformers' GGUF loader) give the same greedy answers as the f16 merged model."""
    from gguf import GGUFReader
    from transformers import AutoModelForCausalLM

    run = real_vocab_run
    hf = export(str(run), str(tmp_path / "hf"), dtype="fp16")
    gguf = export(str(run), str(tmp_path / "gguf"), fmt="gguf", quant="f16")
    assert sorted(p.name for p in gguf.iterdir()) == ["model.gguf", "schema.json"]
    loaded = open_renderer(str(run))
    tok = loaded.tokenizer

    fields = GGUFReader(gguf / "model.gguf").fields

    def text(key):
        return bytes(fields[key].parts[-1]).decode()

    tokens = fields["tokenizer.ggml.tokens"]
    vocab = [bytes(tokens.parts[i]).decode("utf-8", "replace") for i in tokens.data]
    assert vocab == tok.convert_ids_to_tokens(list(range(len(vocab))))
    assert int(fields["tokenizer.ggml.eos_token_id"].parts[-1][0]) == tok.eos_token_id
    assert int(fields["tokenizer.ggml.bos_token_id"].parts[-1][0]) == tok.bos_token_id
    assert text("tokenizer.chat_template") == tok.chat_template

    prompts = [loaded.renderer.prompt_ids(loaded.prompt(t))[0] for t in PROMPTS]
    merged = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    from_gguf = AutoModelForCausalLM.from_pretrained(
        gguf, gguf_file="model.gguf", dtype=torch.float32
    )
    stops, pad = loaded.renderer.stop_token_ids, tok.pad_token_id
    expected = _greedy(merged, prompts, stops, pad)
    assert any(expected), "empty answers would prove nothing"
    assert _greedy(from_gguf, prompts, stops, pad) == expected


def test_ollama_export_templates_the_training_prompt(real_vocab_run, tmp_path):
    out = export(str(real_vocab_run), str(tmp_path / "ollama"), fmt="ollama", quant="q8_0")
    assert {p.name for p in out.iterdir()} == {
        "model.gguf",
        "schema.json",
        "Modelfile",
        "format.json",
    }
    modelfile = (out / "Modelfile").read_text()
    template = modelfile.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    system = modelfile.split('SYSTEM """', 1)[1].split('"""', 1)[0]
    loaded = open_renderer(str(real_vocab_run))
    assert system == loaded.system_prompt
    text = "我叫张三，邮箱zhangsan@qq.com"
    ours = loaded.renderer.prompt_text(loaded.prompt(text)).removeprefix(loaded.tokenizer.bos_token)
    # what Ollama's template gives for the SYSTEM line and a user text
    assert template.replace("{{ .System }}", system).replace("{{ .Prompt }}", text) == ours
    assert f"PARAMETER stop {json.dumps(loaded.renderer.turn_end)}" in modelfile
    assert "verbatim" not in (out / "format.json").read_text()
    assert json.loads((out / "format.json").read_text())["required"]


def test_export_refuses_a_k_quant_without_llama_quantize_with_a_way_out(
    tiny_run, tmp_path, monkeypatch
):
    monkeypatch.setenv("SLMTUNE_LLAMA_QUANTIZE", str(tmp_path / "no-such-binary"))
    with pytest.raises(ConfigError, match="llama-quantize .*make llama-cpp"):
        export(str(tiny_run), str(tmp_path / "x"), fmt="gguf", quant="q4_k_m")
    with pytest.raises(ConfigError, match="q8_0, f32, q4_k_m"):
        export(str(tiny_run), str(tmp_path / "x"), fmt="gguf", quant="q3_x")
    assert not (tmp_path / "x").exists()
