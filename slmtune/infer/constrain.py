"""Constrained decoding with xgrammar: every answer parses and has exactly the schema's keys.

xgrammar compiles a JSON Schema against the tokenizer once (a few ms to a second) and then,
at each decoding step, fills a bitmask of the tokens that keep the answer valid; the masked
logits go to the usual greedy/sampling step. The grammar's end accepts only the template's
stop tokens, so an answer ends right after its closing brace.

The decode loop (infer/decode.py) keeps one `xgrammar.GrammarMatcher` per row, fills the
rows' masks into one bitmask per step and applies it to the batch's logits.
"""

from __future__ import annotations

import json

# json.dumps' default separators: the layout the training answers were written in.
SEPARATORS = (", ", ": ")


def compiled_grammar(opened, schema: dict):
    """Compile `schema` for this model's tokenizer; cached on the opened run (OpenRun.cache)."""
    import xgrammar as xgr

    cache = opened.cache.setdefault("grammars", {})
    key = json.dumps(schema, sort_keys=True)
    if key not in cache:
        if "compiler" not in opened.cache:
            info = xgr.TokenizerInfo.from_huggingface(
                opened.tokenizer,
                vocab_size=_vocab_size(opened.model),
                stop_token_ids=opened.renderer.stop_token_ids,
            )
            opened.cache["compiler"] = xgr.GrammarCompiler(info, max_threads=1)
        cache[key] = opened.cache["compiler"].compile_json_schema(
            schema, any_whitespace=False, separators=SEPARATORS, strict_mode=True
        )
    return cache[key]


def _vocab_size(model) -> int:
    """Rows of the LM head (may exceed the tokenizer's length because of padding)."""
    return model.get_output_embeddings().weight.shape[0]
