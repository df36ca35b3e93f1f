"""What `export --format gguf | ollama` writes runs on llama.cpp itself (the engine Ollama
runs): its server answers like our model, and a k-quant export answers in the run's schema
through the official `openai` client."""

from __future__ import annotations

import json

import httpx
import jsonschema
import torch
from gguf import GGMLQuantizationType, GGUFReader
from openai import OpenAI
from transformers import AutoModelForCausalLM

from slmtune.export import export
from slmtune.run import open_renderer
from tests.infer.test_export import PROMPTS, _greedy
from tests_llama.conftest import llama_server


def test_llama_server_answers_the_f32_export_as_the_merged_model(real_vocab_run, tmp_path):
    """Greedy, from our own prompt token ids: the same tokens as transformers on the merged
    model (the weights, the tokenizer and the architecture read alike by llama.cpp)."""
    run = real_vocab_run
    gguf = export(str(run), str(tmp_path / "gguf"), fmt="gguf", quant="f32")
    hf = export(str(run), str(tmp_path / "hf"), dtype="fp32")
    loaded = open_renderer(str(run))
    stops, pad = loaded.renderer.stop_token_ids, loaded.tokenizer.pad_token_id
    prompts = [loaded.renderer.prompt_ids(loaded.prompt(t))[0] for t in PROMPTS]
    merged = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    expected = [[t for t in a if t not in stops] for a in _greedy(merged, prompts, stops, pad)]
    assert any(expected), "empty answers would prove nothing"

    with llama_server(gguf / "model.gguf", tmp_path / "server.log") as url:
        got = []
        for ids in prompts:
            body = {"prompt": ids, "n_predict": 12, "temperature": 0, "cache_prompt": False,
                    "return_tokens": True}  # fmt: skip
            reply = httpx.post(f"{url}/completion", json=body, timeout=120).json()
            got.append(reply["tokens"])
    assert got == expected


def test_a_q4_k_m_ollama_export_is_four_bit_and_answers_in_the_schema(real_vocab_run, tmp_path):
    """--quant q4_k_m: llama-quantize on the converter's f16 file (which does not stay); no
    weight stays f16, the file is smaller than f16's, and llama.cpp's server, asked through
    the `openai` client with the export's format.json, answers JSON in that schema. (k-quants
    need rows of a multiple of 256; llama-quantize gives narrower rows, all of this tiny
    model's, the nearest legacy type, Q5_0.)"""
    run = real_vocab_run
    q4 = export(str(run), str(tmp_path / "q4"), fmt="ollama", quant="q4_k_m")
    f16 = export(str(run), str(tmp_path / "f16"), fmt="gguf", quant="f16")
    assert sorted(p.name for p in q4.iterdir()) == [
        "Modelfile",
        "format.json",
        "model.gguf",
        "schema.json",
    ]
    kinds = {t.tensor_type for t in GGUFReader(q4 / "model.gguf").tensors}
    assert GGMLQuantizationType.F16 not in kinds and GGMLQuantizationType.Q5_0 in kinds
    assert (q4 / "model.gguf").stat().st_size < (f16 / "model.gguf").stat().st_size

    schema = json.loads((q4 / "format.json").read_text())
    system = open_renderer(str(run)).system_prompt
    with llama_server(q4 / "model.gguf", tmp_path / "server.log") as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused")
        for text in PROMPTS[:2]:
            reply = client.chat.completions.create(
                model="slmtune",
                messages=[{"role": "system", "content": system}, {"role": "user", "content": text}],
                response_format={"type": "json_schema",
                                 "json_schema": {"name": "answer", "schema": schema}},
                temperature=0,
                max_tokens=1024,
            )  # fmt: skip
            assert reply.choices[0].finish_reason == "stop"
            jsonschema.validate(json.loads(reply.choices[0].message.content), schema)
