"""The grammar's strings are JSON strings: no raw control characters, no encoded surrogates
(xgrammar's own JSON grammar allows both; slmtune.infer.constrain puts JSON's rules back),
escapes where xgrammar can afford them, and masks that stay fast."""

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
def test_strings_refuse_control_characters_and_surrogates(accepts, bounded):
    schema = _one({"type": "string", **({"maxLength": 8} if bounded else {})})
    assert accepts(schema, '{"a": "第1行"}')
    assert not accepts(schema, '{"a": "x', b"\x08")  # a raw control character
    assert not accepts(schema, '{"a": "x\n')
    assert not accepts(schema, '{"a": "x', b"\xed\xa0")  # the UTF-8 form of a surrogate
    assert accepts(schema, '{"a": "x', b"\xed\x9f\xbf")  # U+D7FF, just below them


def test_unbounded_strings_take_escapes_but_no_surrogate_escapes(accepts):
    schema = _one({"type": "string"})
    assert accepts(schema, '{"a": "第1行\\n第2行"}')  # a line break, escaped
    assert accepts(schema, '{"a": "他说\\"好\\""}')  # quotes, escaped
    assert accepts(schema, '{"a": "\\u00e9"}')
    assert not accepts(schema, '{"a": "\\ud800')


def test_a_bounded_string_repeats_a_single_character_class():
    """An escape alternative inside xgrammar's bounded repetition made each mask take ~0.8 s
    per token at maxLength 300 (a single class: ~0.03 ms): the grammar keeps one class."""
    ebnf = grammar_text(_one({"type": "string", "maxLength": 300}))
    rule = next(line for line in ebnf.splitlines() if "_characters ::=" in line)
    body = rule.split("::=", 1)[1].strip()
    assert body.startswith("(([") and body.endswith("]))") and "|" not in body, rule


def test_answers_of_a_random_model_are_valid_utf8_within_their_bounds(tiny_run):
    """A barely trained byte-level model wanders into byte sequences; every answer still
    decodes without a replacement character and validates against the schema."""
    opened = open_run(str(tiny_run))
    requests = [
        Request(
            opened.prompt(f"我叫用户{i}，邮箱u{i}@qq.com"),
            schema=SHORT_SCHEMA,
            temperature=t,
            seed=i,
            max_new_tokens=60,
        )  # fmt: skip
        for i in range(24)
        for t in (0.0, 1.0)
    ]
    for answer in answer_all(opened, requests, 16):
        assert answer.finish_reason == "stop" and "\ufffd" not in answer.text, answer.text
        jsonschema.validate(json.loads(answer.text), SHORT_SCHEMA)
