"""Tiny offline models for unit tests: a byte-level BPE tokenizer trained in-process and
2-layer models of each family the seeds use, built from their config classes."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GemmaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

SPECIAL = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
]
CORPUS = [
    "我叫张三，住在北京市朝阳区建国路88号，邮箱zhangsan@qq.com，家里宽带经常断网。",
    '{"name": "张三", "address": "北京市朝阳区", "email": "a@b.com", "question": null}',
    "Hello, how are you? The quick brown fox jumps over the lazy dog. user assistant system model",
    "提取json 姓名 地址 邮箱 问题 投诉内容 电话 工单号 停电 电表 水费 物业",
] * 20


@functools.lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_tokens(["<think>", "</think>"])
    return tok.to_str()


def tiny_tokenizer(chat_template: str | None = None) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
        additional_special_tokens=[
            "<start_of_turn>",
            "<end_of_turn>",
            "<|im_start|>",
            "<|im_end|>",
        ],
    )
    if chat_template:
        tok.chat_template = chat_template
    return tok


def tiny_config(family: str, vocab: int):
    """(config, model class) of a 2-layer, hidden-64 model of `family`."""
    common = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
        max_position_embeddings=512,
    )
    if family == "gemma3_text":
        return Gemma3TextConfig(
            **common, sliding_window=64, layer_types=["sliding_attention", "full_attention"]
        ), Gemma3ForCausalLM
    if family == "qwen3":
        return Qwen3Config(**common), Qwen3ForCausalLM
    if family == "qwen2":
        return Qwen2Config(**{k: v for k, v in common.items() if k != "head_dim"}), Qwen2ForCausalLM
    if family == "gemma":
        return GemmaConfig(**common), GemmaForCausalLM
    raise ValueError(family)


def tiny_model_dir(path: Path, family: str, chat_template: str | None = None) -> Path:
    """An HF model directory (config, safetensors, tokenizer) for a random 2-layer model."""
    path = Path(path)
    tok = tiny_tokenizer(chat_template)
    cfg, cls = tiny_config(family, len(tok))
    torch.manual_seed(0)
    cls(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


SHORT_SCHEMA = {  # short strings, so a barely trained tiny model finishes its JSON answers
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 4},
        "email": {"type": "string", "maxLength": 6},
        "vip": {"type": "boolean"},
    },
    "required": ["name", "email", "vip"],
    "additionalProperties": False,
}


def real_vocab_model_dir(path: Path, head_dim: int = 256) -> Path:
    """A tiny 6-layer Gemma-3 with the embedded model's real 262k tokenizer, for tools that
    only know real tokenizers (llama.cpp's converter, vLLM). Gemma-3's own layer pattern (5
    sliding, 1 full): GGUF does not store it, and its readers assume it. Heads of 256 with
    attention scaled by 1/sqrt(256), as in the released Gemma-3 models up to 12B: GGUF does
    not store that scale either, llama.cpp takes 1/sqrt(head_dim), transformers' GGUF loader
    the config default (query_pre_attn_scalar 256), so only this agrees with both."""
    from transformers import AutoTokenizer

    from slmtune.models import resolve_model

    path = Path(path)
    tok = AutoTokenizer.from_pretrained(resolve_model("gemma-3-270m"))
    cfg, cls = tiny_config("gemma3_text", len(tok))
    cfg.head_dim = cfg.query_pre_attn_scalar = head_dim
    cfg.num_hidden_layers = 6
    cfg.layer_types = ["sliding_attention"] * 5 + ["full_attention"]
    torch.manual_seed(0)
    cls(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path
