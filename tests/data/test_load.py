"""Every input format and file type; every problem reported with file, line and key."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from slmtune.data.load import load_examples
from slmtune.errors import DataError, SlmtuneError

ALPACA = {"system": "S", "instruction": "I", "input": "X", "output": "O", "id": 7}


def write_jsonl(path, rows):
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def roles(example):
    return [(m.role, m.content) for m in example.messages]


def test_alpaca_with_history_and_meta(tmp_path):
    rec = {**ALPACA, "history": [["q1", "a1"]]}
    result = load_examples(write_jsonl(tmp_path / "a.jsonl", [rec]))
    (e,) = result.examples
    assert roles(e) == [
        ("system", "S"),
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "I\nX"),
        ("assistant", "O"),
    ]
    assert e.meta == {"id": 7} and e.source.endswith("a.jsonl:line 1")
    assert result.format == "alpaca"


def test_sharegpt_both_key_styles_and_messages_with_content_parts(tmp_path):
    rows = [
        {
            "conversations": [{"from": "human", "value": "h"}, {"from": "gpt", "value": "g"}],
            "system": "S",
        },
        {"conversation": [{"role": "user", "content": "u"}, {"role": "assistant", "message": "m"}]},
        {
            "messages": [
                {"role": "developer", "content": "D"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "p1"}, {"type": "text", "text": "p2"}],
                },
                {"role": "assistant", "content": "A"},
            ]
        },
    ]
    ex = load_examples(write_jsonl(tmp_path / "c.jsonl", rows)).examples
    assert roles(ex[0]) == [("system", "S"), ("user", "h"), ("assistant", "g")]
    assert roles(ex[1]) == [("user", "u"), ("assistant", "m")]
    assert roles(ex[2]) == [("system", "D"), ("user", "p1p2"), ("assistant", "A")]


def test_json_array_csv_parquet_and_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.json").write_text(json.dumps([ALPACA, ALPACA]))
    (tmp_path / "d" / "b.csv").write_text(
        'instruction,output,history\nI,O,"[[""q"", ""a""]]"\n', encoding="utf-8"
    )
    pq.write_table(
        pa.Table.from_pylist([{"instruction": "P", "output": "Q"}]), tmp_path / "d" / "c.parquet"
    )
    result = load_examples(tmp_path / "d")
    assert len(result.examples) == 4
    sources = [e.source.split("/")[-1] for e in result.examples]
    assert sources == ["a.json:record 1", "a.json:record 2", "b.csv:row 2", "c.parquet:row 1"]
    assert roles(result.examples[2])[:2] == [("user", "q"), ("assistant", "a")]


def test_three_kinds_of_broken_records_all_listed(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"instruction": "ok", "output": "fine"}\n'
        b'{"instruction": "no answer"\n'  # broken JSON
        b'{"instruction": "x", "output": "  "}\n'  # empty answer
        b'{"conversations": [{"from": "human", "value": "a"}, {"from": "alien", "value": "b"}]}\n'
        b"\xff\xfe not utf8\n"
        b"[1, 2]\n"
        b'{"instruction": "y"}\n'  # missing output
    )
    with pytest.raises(DataError) as err:
        load_examples(path)
    text = str(err.value)
    assert f"{path}:line 2: broken JSON" in text
    assert f"{path}:line 3 [output]: empty answer" in text
    assert f"{path}:line 4 [conversations[1].from]: unknown role 'alien'" in text
    assert f"{path}:line 5: not valid UTF-8" in text
    assert f"{path}:line 6: expected a JSON object, got list" in text
    assert f"{path}:line 7 [output]: missing answer" in text
    assert "--skip-invalid to use the 1 valid records" in text


def test_skip_invalid_keeps_the_rest_and_counts_drops(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [ALPACA, {"instruction": "x"}, ALPACA])
    result = load_examples(path, skip_invalid=True)
    assert len(result.examples) == 2 and result.dropped == 1 and result.n_records == 3


def test_inference_inputs_need_no_answer(tmp_path):
    path = write_jsonl(tmp_path / "i.jsonl", [{"instruction": "only a question"}])
    (e,) = load_examples(path, require_answer=False).examples
    assert e.answer is None and e.prompt_messages[-1].content == "only a question"


def test_unknown_shape_names_the_keys(tmp_path):
    path = write_jsonl(tmp_path / "u.jsonl", [{"foo": 1, "bar": 2}])
    with pytest.raises(DataError, match=r"unknown record shape \(keys: bar, foo\)"):
        load_examples(path)


def test_missing_file_and_bad_extension(tmp_path):
    with pytest.raises(SlmtuneError, match="no such file"):
        load_examples(tmp_path / "nope.jsonl")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(SlmtuneError, match="unsupported file type"):
        load_examples(tmp_path / "x.txt")
