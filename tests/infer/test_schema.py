"""Schema learned from training answers, and constrained decoding on a tiny model."""

from __future__ import annotations

import json

import pytest

from slmtune.errors import ConfigError
from slmtune.infer.driver import Request, answer_all
from slmtune.run import infer_schema, load_schema, open_run, parse_json_answer


def test_schema_keys_types_nullable_lists_and_nesting():
    answers = [
        json.dumps({"name": "张三", "age": 3, "tags": ["a"], "addr": {"city": "北京"}}),
        json.dumps({"name": None, "age": 2.5, "tags": [], "addr": {"city": None}, "vip": True}),
    ]
    schema = infer_schema(answers)
    props = schema["properties"]
    assert list(props) == ["name", "age", "tags", "addr", "vip"]  # first-seen order
    assert schema["required"] == ["name", "age", "tags", "addr", "vip"]
    assert schema["additionalProperties"] is False
    assert props["name"] == {"type": ["string", "null"], "maxLength": 4 * 2 + 32}
    assert props["age"]["type"] == "number"  # integer + float
    assert props["tags"] == {
        "type": "array", "items": {"type": "string", "maxLength": 4 + 32}, "maxItems": 4 + 8
    }  # fmt: skip
    assert props["addr"]["properties"]["city"] == {"type": ["string", "null"], "maxLength": 40}
    assert props["vip"]["type"] == ["null", "boolean"]  # missing in one answer: nullable


def test_a_looping_value_is_closed_at_its_length_bound():
    import xgrammar as xgr

    from tests.tiny import tiny_tokenizer

    schema = infer_schema([json.dumps({"name": "张三"}), json.dumps({"name": "李四光"})])
    assert schema["properties"]["name"]["maxLength"] == 4 * 3 + 32
    tok = tiny_tokenizer()  # byte-level: any text is some token sequence
    grammar = xgr.GrammarCompiler(xgr.TokenizerInfo.from_huggingface(tok)).compile_json_schema(
        json.dumps(schema), any_whitespace=False
    )

    def accepts(text: str) -> bool:
        matcher = xgr.GrammarMatcher(grammar)
        return all(matcher.accept_token(t) for t in tok.encode(text, add_special_tokens=False))

    assert accepts('{"name": "' + "光" * 44 + '"}')
    assert not accepts('{"name": "' + "光" * 45)  # the 45th character is refused


def test_free_text_answers_have_no_schema():
    assert infer_schema(["你好", "谢谢", '{"a": 1}']) is None
    assert infer_schema([]) is None


def test_bad_schema_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.json").write_text("{not json")
    with pytest.raises(ConfigError, match="s.json: not valid JSON"):
        load_schema(tmp_path / "s.json")
    with pytest.raises(ConfigError, match="file not found"):
        load_schema(tmp_path / "missing.json")


def test_training_stores_the_schema_in_the_run(tiny_run):
    schema = json.loads((tiny_run / "schema.json").read_text())
    assert schema["required"] == ["name", "email", "vip"]
    assert open_run(str(tiny_run)).schema == schema


SHORT = {  # short strings so a barely trained tiny model can finish its answers
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 4},
        "kind": {"enum": ["a", "b"]},
        "vip": {"type": "boolean"},
    },
    "required": ["name", "kind", "vip"],
    "additionalProperties": False,
}


def test_constrained_answers_parse_with_exactly_the_schema_keys(tiny_run):
    opened = open_run(str(tiny_run))
    texts = ["我叫张三", "hello there", "住在北京市朝阳区建国路88号", "邮箱zhangsan@qq.com"]
    free = answer_all(opened, [Request(opened.prompt(t), 40) for t in texts], batch_size=3)
    requests = [Request(opened.prompt(t), 40, schema=SHORT) for t in texts]
    constrained = answer_all(opened, requests, batch_size=3)
    # the barely trained model does not produce this schema by itself ...
    assert not all(parse_json_answer(g.text)[0] for g in free)
    # ... but under the grammar every answer does
    for g in constrained:
        obj, error = parse_json_answer(g.text)
        assert error is None, g.text
        assert list(obj) == ["name", "kind", "vip"] and obj["kind"] in ("a", "b")
        assert g.finished and 0 < g.new_tokens <= 40


def test_eval_reports_constrained_and_unconstrained_side_by_side(tiny_run, tmp_path):
    from slmtune.config import DecodeConfig
    from slmtune.evaluate.evaluate import evaluate

    schema = tmp_path / "short.json"
    schema.write_text(json.dumps(SHORT))
    data = tmp_path / "test.jsonl"
    answer = json.dumps({"name": "张三", "kind": "a", "vip": True}, ensure_ascii=False)
    rows = [{"instruction": f"我叫张三{i}", "input": "", "output": answer} for i in range(3)]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    runs = evaluate(
        str(tiny_run),
        str(data),
        str(tmp_path / "eval"),
        DecodeConfig(max_new_tokens=40, schema_file=str(schema)),
        compare_unconstrained=True,
        quiet=True,
    )
    assert list(runs) == ["fine-tuned (unconstrained)", "fine-tuned"]
    assert (
        runs["fine-tuned"]["constrained"] and not runs["fine-tuned (unconstrained)"]["constrained"]
    )
    assert runs["fine-tuned"]["parse_rate"] == 1.0
    assert runs["fine-tuned (unconstrained)"]["parse_rate"] < 1.0
    assert (tmp_path / "eval" / "predictions_fine_tuned__unconstrained.jsonl").is_file()


def test_the_answer_token_bound_covers_every_valid_answer():
    from slmtune.run.schema import answer_token_bound

    schema = {
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"], "maxLength": 10},
            "quote": {"type": "string", "verbatim": True},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}, "maxItems": 4},
            "n": {"type": "integer"},
        },
        "required": ["name", "quote", "tags", "n"],
        "additionalProperties": False,
    }
    bound = answer_token_bound(schema, source_bytes=100)
    longest = json.dumps(
        {"name": "\u0001" * 10, "quote": "x" * 100, "tags": ["\u0001" * 3] * 4, "n": 10**15}
    )  # every character escaped to 6: one token per character of the JSON at worst
    assert bound >= len(longest)
    assert answer_token_bound(schema, 1000) - bound == 900  # verbatim: grows with the input
    unbounded = {**schema, "properties": {"x": {"type": "string"}}}
    assert answer_token_bound(unbounded, 100) is None  # no maxLength, not verbatim
