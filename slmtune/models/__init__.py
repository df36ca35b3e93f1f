"""Resolve a model reference (alias, local dir, .gguf, hub id in the local cache) and load it."""

from slmtune.models.load import cpu_has_bf16, load_model, load_tokenizer
from slmtune.models.resolve import ALIASES, cache_root, list_models, resolve_model

__all__ = [
    "ALIASES",
    "cache_root",
    "cpu_has_bf16",
    "list_models",
    "load_model",
    "load_tokenizer",
    "resolve_model",
]
