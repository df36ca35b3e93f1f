"""Constrained decoding with xgrammar: every answer parses and has exactly the schema's keys.

xgrammar compiles a JSON Schema against the tokenizer once (a few ms to a second) and then,
at each decoding step, fills a bitmask of the tokens that keep the answer valid; the masked
logits go to the usual greedy/sampling step. The grammar's end accepts only the template's
stop tokens, so an answer ends right after its closing brace.

The decode loop (infer/decode.py) keeps one `xgrammar.GrammarMatcher` per row, fills the
rows' masks into one bitmask per step and applies it to the batch's logits.

Compiled grammars are kept per opened model in a bounded LRU (a server sees arbitrary
client schemas: memory must not grow with each new one); compilation is thread-safe, so the
server compiles on its request threads, never on the decode thread.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict

from slmtune.errors import SlmtuneError
from slmtune.run.answer import grammar_schema

# json.dumps' default separators: the layout the training answers were written in.
SEPARATORS = (", ", ": ")
GRAMMARS_KEPT = 64  # compiled schemas per model (LRU)
COMPILER_CACHE_BYTES = 64 << 20  # xgrammar's own cache of compiled pieces
_LOCK = threading.Lock()
_NATIVE_PREFIX = re.compile(r"^\[[^\]]*\]\s*\S+:\d+:\s*")  # "[12:00:00] /x/y.cc:42: "


class SchemaError(SlmtuneError):
    """A JSON Schema that cannot be turned into a grammar; the message says where."""


def compiled_grammar(opened, schema: dict):
    """Compile `schema` for this model's tokenizer; cached on the opened run (OpenRun.cache)."""
    key = json.dumps(schema, sort_keys=True)
    with _LOCK:
        cache: OrderedDict = opened.cache.setdefault("grammars", OrderedDict())
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    compiler = grammar_compiler(opened)
    try:
        grammar = compiler.compile_grammar(grammar_text(schema))
    except Exception as exc:  # xgrammar reports bad schemas as RuntimeError / ValueError
        raise SchemaError(_NATIVE_PREFIX.sub("", str(exc)).strip()) from None
    with _LOCK:
        cache[key] = grammar
        while len(cache) > GRAMMARS_KEPT:
            cache.popitem(last=False)
    return grammar


def grammar_compiler(opened):
    """xgrammar's compiler for the run's tokenizer (made once, kept in OpenRun.cache)."""
    import xgrammar as xgr

    with _LOCK:
        if "compiler" not in opened.cache:
            opened.cache["compiler"] = xgr.GrammarCompiler(
                tokenizer_info(opened), max_threads=1, cache_limit_bytes=COMPILER_CACHE_BYTES
            )
        return opened.cache["compiler"]


def tokenizer_info(opened):
    """xgrammar's view of the run's tokenizer (each token's bytes), made once per run."""
    import xgrammar as xgr

    if "tokenizer_info" not in opened.cache:
        opened.cache["tokenizer_info"] = xgr.TokenizerInfo.from_huggingface(
            opened.tokenizer,
            vocab_size=_vocab_size(opened.model),
            stop_token_ids=opened.renderer.stop_token_ids,
        )
    return opened.cache["tokenizer_info"]


def _vocab_size(model) -> int:
    """Rows of the LM head (may exceed the tokenizer's length because of padding)."""
    return model.get_output_embeddings().weight.shape[0]


def grammar_text(schema: dict) -> str:
    """The EBNF that compiled_grammar compiles for `schema` (no free whitespace, the training
    answers' separators, strings as JSON defines them); engines that take a grammar (vLLM)
    get it too, so they constrain answers exactly as our own loop does. A verbatim value's
    maxLength is left to the grounding (run/answer.grammar_schema), so it takes escapes."""
    import xgrammar as xgr

    ebnf = str(
        xgr.Grammar.from_json_schema(
            grammar_schema(schema), any_whitespace=False, separators=SEPARATORS, strict_mode=True
        )
    )
    return _json_strings(ebnf)


# xgrammar 0.2's JSON grammar is laxer than JSON inside strings: a string with maxLength
# (every string of a learned schema) takes raw control characters, and every string takes
# the UTF-8 form of surrogates (ED A0..BF ..), which is not UTF-8: the answer then decodes
# to U+FFFD and can break its schema. These rules put JSON's own back: a character is
# anything but a control character, quote, backslash or surrogate, and a \u escape names
# no surrogate (tests/infer/test_constrain.py). A string with maxLength still takes no
# escapes (xgrammar's own rule, xgrammar#800): one with an escape alternative inside the
# bounded repetition took ~0.8 s per token to mask at maxLength 300. Verbatim values, the
# long ones (a complaint, a page's body), are unbounded in the grammar for that reason.
_CHAR = r"[^\0-\x1f\"\\\uD800-\uDFFF]"
_STRICT = {
    r"[^\"\\\r\n]": _CHAR,  # a bounded string's character
    r"[^\0-\x1f\"\\\r\n]": _CHAR,  # an unbounded string's character
    '"\\\\" basic_escape': '"\\\\" json_escape',
}
_ESCAPE = (
    r'json_escape ::= ([\"\\/bfnrt]) | ("u" ([0-9A-Ca-cE-Fe-f] json_hex json_hex json_hex'
    r" | [Dd] [0-7] json_hex json_hex))"
    "\njson_hex ::= [0-9A-Fa-f]\n"
)


def _json_strings(ebnf: str) -> str:
    for lax, strict in _STRICT.items():
        ebnf = ebnf.replace(lax, strict)
    return ebnf.rstrip("\n") + "\n" + _ESCAPE
