"""Load a resolved model directory with transformers."""

from __future__ import annotations

from pathlib import Path

import torch

from slmtune.errors import ModelError

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as e:
        raise ModelError(f"{path}: cannot load its tokenizer ({e})") from e
    if tokenizer.pad_token_id is None:
        # Padding positions are never trained or attended to, so any id works; EOS is the
        # convention the seeds' models use.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: Path, dtype: str = "float32", device: str | None = None):
    """Load weights for training or inference; fp32 master weights by default on CPU."""
    from transformers import AutoModelForCausalLM

    if dtype not in DTYPES:
        raise ModelError(f"unknown dtype '{dtype}': use one of float32, bfloat16, float16")
    try:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=DTYPES[dtype], attn_implementation="sdpa"
        )
    except Exception as e:
        raise ModelError(f"{path}: cannot load model weights ({e})") from e
    if device:
        model.to(device)
    return model


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: the CPU multiplies bf16 natively (about 2x fp32 here). Asked of
    torch, whose kernels are the ones that use it."""
    cpu = getattr(torch, "cpu", None)
    return any(
        getattr(cpu, probe, lambda: False)()
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )
