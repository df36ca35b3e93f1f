"""Constrained decoding with xgrammar: every answer parses and has exactly the schema's keys.

xgrammar compiles a JSON Schema against the tokenizer once (a few ms to a second) and then,
at each decoding step, fills a bitmask of the tokens that keep the answer valid; the masked
logits go to the usual greedy/sampling step. The grammar's end accepts only the template's
stop tokens, so an answer ends right after its closing brace.

Our processor (instead of `xgrammar.contrib.hf.LogitsProcessor`) tracks rows that already
finished, so a batch where one row ends early keeps decoding the others.
"""

from __future__ import annotations

import json

import torch
from transformers import LogitsProcessor

# json.dumps' default separators: the layout the training answers were written in.
SEPARATORS = (", ", ": ")


def compiled_grammar(loaded, schema: dict):
    """Compile `schema` for this model's tokenizer; cached on the Loaded model."""
    import xgrammar as xgr

    cache = loaded.cache.setdefault("grammars", {})
    key = json.dumps(schema, sort_keys=True)
    if key not in cache:
        if "compiler" not in loaded.cache:
            info = xgr.TokenizerInfo.from_huggingface(
                loaded.tokenizer,
                vocab_size=_vocab_size(loaded.model),
                stop_token_ids=loaded.renderer.stop_token_ids,
            )
            loaded.cache["compiler"] = xgr.GrammarCompiler(info, max_threads=1)
        cache[key] = loaded.cache["compiler"].compile_json_schema(
            schema, any_whitespace=False, separators=SEPARATORS, strict_mode=True
        )
    return cache[key]


def _vocab_size(model) -> int:
    """Rows of the LM head (may exceed the tokenizer's length because of padding)."""
    return model.get_output_embeddings().weight.shape[0]


class GrammarProcessor(LogitsProcessor):
    """Masks each row's logits to the tokens its grammar allows next. One per generate().

    `grammars` has one entry per batch row; a None row decodes unconstrained.
    """

    def __init__(self, grammars: list):
        import xgrammar as xgr

        self._xgr = xgr
        self.matchers = [xgr.GrammarMatcher(g) if g is not None else None for g in grammars]
        self.bitmask = None  # all bits set = every token allowed
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor):
        xgr = self._xgr
        if self.bitmask is None:
            self.bitmask = xgr.allocate_token_bitmask(len(self.matchers), scores.shape[-1])
        live = [(row, m) for row, m in enumerate(self.matchers) if m and not m.is_terminated()]
        if self.started:
            for row, matcher in live:
                # A finished row is fed padding by generate(); its matcher stays terminated.
                matcher.accept_token(int(input_ids[row, -1]))
        self.started = True
        for row, matcher in live:
            if not matcher.is_terminated():
                matcher.fill_next_token_bitmask(self.bitmask, row)
        device = scores.device
        masked = scores.float().cpu() if device.type != "cuda" else scores
        xgr.apply_token_bitmask_inplace(masked, self.bitmask.to(masked.device))
        return masked.to(device=device, dtype=scores.dtype)
