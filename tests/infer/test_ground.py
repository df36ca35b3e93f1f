"""Grounded (verbatim) fields: learned from the training data, enforced while decoding,
located in the input afterwards."""

from __future__ import annotations

import json

import pytest
import torch

from slmtune.infer.driver import Request, answer_all
from slmtune.infer.ground import token_bytes
from slmtune.run import infer_schema, open_run, parse_json_answer
from slmtune.run.answer import spans, ungrounded, verbatim_paths, without_verbatim

SOURCES = [
    "我叫张三，住在北京市朝阳区建国路88号，邮箱zhangsan@qq.com，家里宽带经常断网。",
    "用户李四反映：电表读数异常，地址：上海市浦东新区，联系邮箱 lisi@163.com",
    'He said "hello"\nand left.',
]
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": ["string", "null"], "maxLength": 40, "verbatim": True},
        "places": {
            "type": "array",
            "items": {"type": "string", "maxLength": 40, "verbatim": True},
            "maxItems": 4,
        },
        "note": {"type": "string", "maxLength": 12},
    },
    "required": ["name", "places", "note"],
    "additionalProperties": False,
}


def test_verbatim_is_learned_per_field_from_the_inputs():
    answers = [
        json.dumps({"name": "张三", "date": "2024-01-02", "ents": ["北京", "上海"]}),
        json.dumps({"name": None, "date": "2024-03-04", "ents": []}),
    ]
    sources = ["张三在北京和上海，1月2日", "3月4日无人"]
    props = infer_schema(answers, sources)["properties"]
    assert props["name"]["verbatim"] is True  # null where absent does not count against it
    assert props["ents"]["items"]["verbatim"] is True
    assert "verbatim" not in props["date"]  # normalised, not copied
    assert "verbatim" not in infer_schema(answers)["properties"]["name"]  # no inputs: no mark
    assert verbatim_paths(infer_schema(answers, sources)) == (("name",), ("ents", "[]"))


def test_spans_locate_values_in_order_of_appearance():
    answer = {"name": "张三", "ents": ["北京", "北京", "上海"], "note": "x"}
    source = "张三去北京，又去上海和北京"
    paths = (("name",), ("ents", "[]"))
    assert spans(answer, source, paths) == {
        "name": [0, 2], "ents": [[3, 5], [11, 13], [8, 10]]
    }  # fmt: skip
    assert spans({"name": None, "ents": []}, source, paths) == {"name": None, "ents": []}
    assert ungrounded(answer, source, paths) == []
    assert ungrounded({"name": "王五", "ents": ["北京"]}, source, paths) == ["name"]


@pytest.fixture(scope="module")
def opened(tiny_run):
    return open_run(str(tiny_run))


def _answers(opened, schema, sources=SOURCES, max_new_tokens=120):
    requests = [
        Request(opened.prompt(s), max_new_tokens=max_new_tokens, schema=schema) for s in sources
    ]
    return answer_all(opened, requests, batch_size=4)


def test_the_allowed_tokens_continue_the_input(opened):
    """Every token the constraint allows inside a verbatim value keeps it a piece of the
    input (its escaped bytes), up to the string's closing quote."""
    from slmtune.infer.ground import Grounding

    vocab = token_bytes(opened)
    g = Grounding(vocab, SOURCES[2], verbatim_paths(SCHEMA))
    for t in opened.tokenizer.encode('{"name": "He said \\"', add_special_tokens=False):
        g.feed(t)
    escaped = json.dumps(SOURCES[2], ensure_ascii=False)[1:-1].encode()
    copied = b'He said \\"'
    only, allowed = g.mask()
    assert only and allowed
    for t in allowed:
        piece = vocab.pieces[t]
        if b'"' in piece.replace(b'\\"', b""):  # closes the string: the part before counts
            piece = piece[: piece.replace(b'\\"', b"..").index(b'"')]
        assert (copied + piece) in escaped, piece
    assert vocab.pieces.index(b"h") in allowed
    assert vocab.pieces.index(b"x") not in allowed  # 'He said "x' is not in the input


def test_constrained_answers_copy_their_values_from_the_input(opened):
    free = [parse_json_answer(g.text)[0] for g in _answers(opened, without_verbatim(SCHEMA))]
    grounded = [parse_json_answer(g.text)[0] for g in _answers(opened, SCHEMA)]
    paths = verbatim_paths(SCHEMA)
    # the tiny random model invents text (and loops) when free to...
    assert any(
        obj is None or ungrounded(obj, src, paths) for obj, src in zip(free, SOURCES, strict=True)
    )
    # ...and copies it when the schema says so; every value has its place in the input
    assert all(obj is not None for obj in grounded)
    assert any(obj["name"] for obj in grounded)
    for obj, src in zip(grounded, SOURCES, strict=True):
        assert ungrounded(obj, src, paths) == []
        located = spans(obj, src, paths)
        pairs = zip(obj["places"], located["places"], strict=True)
        for value, span in [(obj["name"], located["name"]), *pairs]:
            assert value is None or src[span[0] : span[1]] == value


def test_a_model_that_wants_to_loop_closes_the_value(opened, monkeypatch):
    """A model pushed to repeat one token forever: unconstrained it loops until the token
    limit; grounded, the value cannot outgrow the input and the answer ends."""
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "maxLength": 200, "verbatim": True}},
        "required": ["q"],
        "additionalProperties": False,
    }
    source = "楼上楼上又在装修，吵。"
    loop_token = opened.tokenizer.encode("楼上", add_special_tokens=False)[0]
    head = opened.model.get_output_embeddings()

    def favour(module, args, logits):
        logits = logits.clone()
        logits[..., loop_token] += 50.0
        return logits

    handle = head.register_forward_hook(favour)
    try:
        free = _answers(opened, without_verbatim(schema), [source], max_new_tokens=400)[0]
        grounded = _answers(opened, schema, [source], max_new_tokens=None)[0]  # derived limit
    finally:
        handle.remove()
    assert free.finish_reason == "length"  # it looped until the token limit
    value = parse_json_answer(grounded.text)[0]["q"]
    assert grounded.finished and value in source and grounded.new_tokens < 40


def test_verbatim_mask_never_lets_a_row_choose_a_grammar_forbidden_token():
    from slmtune.infer.ground import restrict

    logits = torch.tensor([[0.0, float("-inf"), 1.0, 2.0]])
    restrict(logits, 0, (True, [1, 2]))
    assert logits.argmax().item() == 2 and logits[0, 3] == float("-inf")
    logits = torch.tensor([[0.0, float("-inf"), 1.0]])
    restrict(logits, 0, (True, [1]))  # nothing both allow: the grammar alone decides
    assert logits.argmax().item() == 2
    logits = torch.tensor([[0.0, float("-inf"), 1.0]])
    restrict(logits, 0, (False, [2]))
    assert logits.argmax().item() == 0


def test_a_verbatim_value_takes_escapes_and_its_bound_counts_characters(opened):
    """The grammar leaves verbatim values unbounded (xgrammar's bounded strings take no
    escapes); the grounding holds them to maxLength, an escape or a CJK character being one
    character: a copied line break is allowed, and at the bound only the closing quote is."""
    from slmtune.infer.constrain import grammar_text
    from slmtune.infer.ground import Grounding
    from slmtune.run.answer import verbatim_bounds

    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "maxLength": 5, "verbatim": True}},
        "required": ["q"],
        "additionalProperties": False,
    }
    assert "{0, 5}" not in grammar_text(schema)  # unbounded in the grammar...
    assert "{0, 5}" in grammar_text(without_verbatim(schema))  # ...but not without the mark
    assert verbatim_bounds(schema) == {("q",): 5}
    vocab = token_bytes(opened)
    g = Grounding(vocab, "第一行\n第二行", verbatim_paths(schema), verbatim_bounds(schema))
    quote = vocab.pieces.index(b'"')
    for t in opened.tokenizer.encode('{"q": "第一行', add_special_tokens=False):
        g.feed(t)
    assert g.chars == 3
    only, allowed = g.mask()
    assert only and vocab.pieces.index(b"\\") in allowed  # the escaped line break goes on
    for t in opened.tokenizer.encode("\\n第", add_special_tokens=False):
        g.feed(t)
    assert g.chars == 5  # 第 一 行 \n 第
    only, allowed = g.mask()
    assert only and quote in allowed
    assert all(vocab.pieces[t].startswith(b'"') for t in allowed)  # nothing but closing


def test_a_quote_right_after_a_backslash_is_not_a_close(opened):
    """After a copied line break's backslash only the escape's rest may follow: a quote
    there would be an escaped quote (\\"), a character the input does not have (a run was
    seen answering a body cut at a line break as '…万元。\\"')."""
    from slmtune.infer.ground import Grounding

    vocab = token_bytes(opened)
    g = Grounding(
        vocab,
        "第一行\n第二行",
        verbatim_paths({"properties": {"q": {"type": "string", "verbatim": True}}}),
    )
    for t in opened.tokenizer.encode('{"q": "第一行\\', add_special_tokens=False):
        g.feed(t)
    assert g.pending == -1  # right after the backslash
    only, allowed = g.mask()
    assert only and allowed
    assert all(vocab.pieces[t].startswith(b"n") for t in allowed), [
        vocab.pieces[t] for t in allowed
    ]
    for t in opened.tokenizer.encode("n", add_special_tokens=False):
        g.feed(t)
    only, allowed = g.mask()
    assert vocab.pieces.index(b'"') in allowed  # after the whole escape the value may end


def test_grounded_answers_keep_their_bounds(opened):
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "maxLength": 4, "verbatim": True},
            "b": {"type": "array", "items": {"type": "string", "maxLength": 3, "verbatim": True},
                  "maxItems": 2},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
    }  # fmt: skip
    sources = [s.replace("，", "\n") for s in SOURCES]
    for answer, source in zip(_answers(opened, schema, sources), sources, strict=True):
        obj = json.loads(answer.text)
        assert len(obj["a"]) <= 4 and all(len(x) <= 3 for x in obj["b"]), obj
        assert ungrounded(obj, source, verbatim_paths(schema)) == []


def test_characters_are_counted_across_token_boundaries():
    from slmtune.infer.ground import _json_chars

    text = '第1\\n\\u00e9\\"x'.encode()  # 第 1 \n é " x
    assert _json_chars(text) == (6, 0)
    for cut in range(len(text) + 1):  # however tokens split it
        first, pending = _json_chars(text[:cut])
        second, pending = _json_chars(text[cut:], pending)
        assert (first + second, pending) == (6, 0), cut


SHAPED = {
    "type": "object",
    "properties": {
        "email": {"type": ["string", "null"], "maxLength": 40, "verbatim": True, "shape": "email"}
    },
    "required": ["email"],
    "additionalProperties": False,
}


def test_shapes_are_learned_when_every_copied_value_has_one():
    from slmtune.run.answer import shape_spans, shape_values, verbatim_shapes

    mails = [
        "a1@qq.com",
        "bo.li@163.com",
        "ｃｈｅｎ＠ｓｉｎａ．ｃｏｍ",
        "x_y@mail.example.cn",
        "z@y.io",
    ]
    answers = [
        json.dumps({"email": m, "name": n}) for m, n in zip(mails, "甲乙丙丁戊", strict=True)
    ]
    sources = [f"{n}的邮箱：{m}，电话13912345678" for m, n in zip(mails, "甲乙丙丁戊", strict=True)]
    schema = infer_schema([*answers, json.dumps({"email": None, "name": "己"})], [*sources, "己"])
    assert schema["properties"]["email"]["shape"] == "email"  # full-width ones fold
    assert "shape" not in schema["properties"]["name"]
    assert verbatim_shapes(schema) == {("email",): ("email", True)}
    assert "shape" not in infer_schema(answers[:4], sources[:4])["properties"]["email"]  # too few
    text = "电话13912345678 邮箱 ａｂ＠ｑｑ．ｃｏｍ。"
    at = text.index("ａ")
    assert shape_spans(text, "email") == [(at, at + len("ａｂ＠ｑｑ．ｃｏｍ"))]
    assert shape_spans("电话13912345678", "phone") == [(2, 13)]
    assert shape_values("E-mail-abc@qq.com。", "email") == {(0, 17): [(0, 17), (2, 17), (7, 17)]}
    glued = [f"{n}的邮箱x{m}" for m, n in zip(mails, "甲乙丙丁戊", strict=True)]  # mid-word
    assert "shape" not in infer_schema(answers, glued)["properties"]["email"]


def test_a_shaped_value_opens_only_where_its_shape_is_and_stays_inside(opened):
    from slmtune.infer.ground import grounding

    vocab = token_bytes(opened)
    quote = vocab.pieces.index(b'"')
    start = opened.tokenizer.encode('{"email": ', add_special_tokens=False)
    none = grounding(opened, SHAPED, "电话13912345678，验证码6536")
    for t in start:
        none.feed(t)
    only, ids = none.mask()
    assert not only and quote in ids  # no email in the input: the value cannot open
    some = grounding(opened, SHAPED, "电话13912345678，邮箱lisi@qq.com。")
    for t in [*start, quote]:
        some.feed(t)
    only, ids = some.mask()
    pieces = [vocab.pieces[t] for t in ids]
    assert only and b"l" in pieces and b"1" not in pieces  # the phone's digits are out
    assert grounding(opened, SHAPED, "no mail here").mask() is None  # outside the value


def test_a_shaped_value_is_a_whole_value_of_its_shape_not_a_piece_of_one(opened):
    """An email field's value is an address, from a word's edge to a word's edge: not "s",
    "support" or "port@shop.cn" of support@shop.cn, but "abc@qq.com" of "E-mail-abc@qq.com"."""
    from slmtune.infer.ground import grounding

    vocab = token_bytes(opened)
    start = opened.tokenizer.encode('{"email": "', add_special_tokens=False)
    closes = {t for t, p in enumerate(vocab.pieces) if p.startswith(b'"')}

    def after(source: str, copied: str) -> set[int]:
        row = grounding(opened, SHAPED, source)
        for t in [*start, *opened.tokenizer.encode(copied, add_special_tokens=False)]:
            row.feed(t)
        only, ids = row.mask()
        assert only
        return set(ids)

    source = "商家回复：请把截图发到support@shop.cn，谢谢。"
    assert not after(source, "") & closes  # an empty value is no address
    assert {b"u", b"p", b"port"}.isdisjoint(vocab.pieces[t] for t in after(source, ""))
    assert not after(source, "s") & closes and not after(source, "support") & closes
    assert after(source, "support@shop.cn") & closes
    opening = after("联系E-mail-abc@qq.com。", "")
    pieces = {vocab.pieces[t] for t in opening}
    assert b"a" in pieces and b"E" in pieces and b"-" not in pieces and b"q" not in pieces


def test_shaped_answers_are_null_without_their_shape_and_never_a_number(opened, monkeypatch):
    """A model pushed towards digits: the email it writes is still an email of the input,
    or null when the input has none."""
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")
    favoured = [t for t, p in enumerate(token_bytes(opened).pieces) if p[:1] in (b'"', b"1")]
    head = opened.model.get_output_embeddings()

    def favour(module, args, logits):
        logits = logits.clone()
        logits[..., favoured] += 30.0
        return logits

    sources = ["电话13912345678，验证码6536", "电话13912345678，邮箱1lisi@163.com。"]
    handle = head.register_forward_hook(favour)
    try:
        answers = [json.loads(a.text) for a in _answers(opened, SHAPED, sources)]
    finally:
        handle.remove()
    assert answers[0]["email"] is None
    assert answers[1]["email"] in {"1lisi@163.com", "lisi@163.com"}  # a whole address
