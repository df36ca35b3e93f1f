"""The grammar's strings are JSON strings: escapes inside bounded strings, no raw control
characters, no encoded surrogates (xgrammar's own JSON grammar allows the last two and
refuses the first; slmtune.infer.constrain puts JSON's rules back)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from slmtune.infer.constrain import grammar_text
from slmtune.infer.driver import Request, answer_all
from slmtune.run import open_run
from tests.tiny import SHORT_SCHEMA, tiny_tokenizer


@pytest.fixture(scope="module")
def accepts():
    """accepts(schema, text, raw=b"") -> does the grammar take `text` then the bytes `raw`?"""
    import xgrammar as xgr

    tok = tiny_tokenizer()  # byte-level: every single byte is a token
    info = xgr.TokenizerInfo.from_huggingface(tok)
    compiler = xgr.GrammarCompiler(info)
    byte_token = {bytes(p): i for i, p in enumerate(info.decoded_vocab) if len(p) == 1}

    def check(schema: dict, text: str, raw: bytes = b"") -> bool:
        matcher = xgr.GrammarMatcher(compiler.compile_grammar(grammar_text(schema)))
        ids = tok.encode(text, add_special_tokens=False) + [byte_token[bytes([b])] for b in raw]
        return all(matcher.accept_token(t) for t in ids)

    return check


def _one(field: dict) -> dict:
    return {"type": "object", "properties": {"a": field}, "required": ["a"],
            "additionalProperties": False}  # fmt: skip


@pytest.mark.parametrize("bounded", [True, False])
def test_strings_take_escapes_and_refuse_control_characters_and_surrogates(accepts, bounded):
    schema = _one({"type": "string", **({"maxLength": 8} if bounded else {})})
    assert accepts(schema, '{"a": "第1行\\n第2行"}')  # a line break, escaped
    assert accepts(schema, '{"a": "他说\\"好\\""}')  # quotes, escaped
    assert accepts(schema, '{"a": "\\u00e9"}')
    assert not accepts(schema, '{"a": "\\ud800')  # an escaped surrogate
    assert not accepts(schema, '{"a": "x', b"\x08")  # a raw control character
    assert not accepts(schema, '{"a": "x\n')
    assert not accepts(schema, '{"a": "x', b"\xed\xa0")  # the UTF-8 form of a surrogate
    assert accepts(schema, '{"a": "x', b"\xed\x9f\xbf")  # U+D7FF, just below them


def test_an_escape_counts_as_one_character_of_max_length(accepts):
    schema = _one({"type": "string", "maxLength": 3})
    assert accepts(schema, '{"a": "a\\nb"}')
    assert not accepts(schema, '{"a": "a\\nbc"')


def test_answers_of_a_random_model_are_valid_utf8_within_their_bounds(tiny_run):
    """A barely trained byte-level model wanders into byte sequences; every answer still
    decodes without a replacement character and validates against the schema."""
    opened = open_run(str(tiny_run))
    requests = [
        Request(opened.prompt(f"我叫用户{i}，邮箱u{i}@qq.com"), schema=SHORT_SCHEMA,
                temperature=t, seed=i, max_new_tokens=60)  # fmt: skip
        for i in range(24)
        for t in (0.0, 1.0)
    ]
    for answer in answer_all(opened, requests, 16):
        assert answer.finish_reason == "stop" and "\ufffd" not in answer.text, answer.text
        jsonschema.validate(json.loads(answer.text), SHORT_SCHEMA)
