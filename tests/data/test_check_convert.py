"""data check / convert / split, through the functions and through the real CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from slmtune.cli import app
from slmtune.data.check import check_dataset, format_report
from slmtune.data.convert import convert, split
from slmtune.data.load import load_examples
from slmtune.errors import DataError
from tests.data.test_load import write_jsonl

runner = CliRunner()


def rec(i, out="A"):
    return {"instruction": f"q{i}", "output": out}


def test_check_counts_roles_duplicates_and_token_lengths(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl", [rec(1), rec(1), rec(2), rec(2, "B"), {"instruction": "x"}]
    )

    def render(e):  # fake: 3 prompt tokens, answer length in chars
        n = len(e.answer)
        return [0] * (3 + n), [-100] * 3 + [1] * n

    r = check_dataset(path, render=render, max_length=3)
    assert (r.records, r.valid, r.invalid) == (5, 4, 1)
    assert r.roles["user"] == 4 and r.roles["assistant"] == 4
    assert r.exact_duplicates == 1 and r.conflicting_duplicates == 1
    assert r.prompt_tokens == [3, 3, 3, 3] and r.answer_tokens == [1, 1, 1, 1]
    assert r.too_long == 4
    text = format_report(r)
    assert "line 5 [output]: missing answer" in text and "5 records, 4 valid, 1 invalid" in text


def test_cli_check_lists_all_broken_lines_without_traceback(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(
        b'{"instruction": "ok", "output": "y"}\n{oops\n{"instruction": "q", "output": ""}\n'
        b'{"messages": [{"role": "wizard", "content": "x"}]}\n'
    )
    result = runner.invoke(app, ["data", "check", str(path)])
    assert result.exit_code == 1
    for line in (
        "line 2: broken JSON",
        "line 3 [output]: empty answer",
        "line 4 [messages[0].role]: unknown role 'wizard'",
    ):
        assert line in result.output
    assert "Traceback" not in result.output


def test_cli_check_valid_file_exits_zero(tmp_path):
    result = runner.invoke(
        app, ["data", "check", str(write_jsonl(tmp_path / "ok.jsonl", [rec(1)]))]
    )
    assert result.exit_code == 0 and "1 records, 1 valid, 0 invalid" in result.output


def test_cli_missing_file_is_a_message(tmp_path):
    result = runner.invoke(app, ["data", "check", str(tmp_path / "missing.jsonl")])
    assert (
        result.exit_code == 1
        and "no such file" in result.output
        and "Traceback" not in result.output
    )


def test_convert_round_trip_alpaca_messages_alpaca(tmp_path):
    src = write_jsonl(
        tmp_path / "a.jsonl",
        [
            {
                "system": "S",
                "instruction": "I",
                "input": "",
                "output": "O",
                "history": [["q", "a"]],
                "id": 3,
            }
        ],
    )
    convert(str(src), str(tmp_path / "m.jsonl"), to="messages")
    msgs = json.loads((tmp_path / "m.jsonl").read_text())
    assert [m["role"] for m in msgs["messages"]] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    convert(str(tmp_path / "m.jsonl"), str(tmp_path / "b.json"), to="alpaca")
    (back,) = json.loads((tmp_path / "b.json").read_text())
    assert back == {
        "system": "S",
        "instruction": "I",
        "input": "",
        "output": "O",
        "history": [["q", "a"]],
        "id": 3,
    }


def test_convert_writes_nothing_on_invalid_input(tmp_path):
    src = write_jsonl(tmp_path / "a.jsonl", [rec(1), {"instruction": "x"}])
    result = runner.invoke(app, ["data", "convert", str(src), str(tmp_path / "out.jsonl")])
    assert result.exit_code == 1 and "line 2" in result.output
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "out.jsonl.tmp").exists()


def test_split_is_deterministic_and_never_leaks_duplicate_prompts(tmp_path):
    rows = [rec(i % 30, out=str(i)) for i in range(100)]  # each prompt appears 3-4 times
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    train, test = split(str(src), test_ratio=0.2, seed=1)
    first = (train.read_text(), test.read_text())
    train, test = split(str(src), test_ratio=0.2, seed=1)
    assert (train.read_text(), test.read_text()) == first
    train_prompts = {e.messages[0].content for e in load_examples(train).examples}
    test_prompts = {e.messages[0].content for e in load_examples(test).examples}
    assert not train_prompts & test_prompts
    assert (
        len(test_prompts) == 6
        and len(load_examples(train).examples) + len(load_examples(test).examples) == 100
    )
    _, other = split(str(src), test_ratio=0.2, seed=2)
    assert other.read_text() != first[1]


def test_cluener_becomes_extraction_records_with_every_type(tmp_path):
    from slmtune.data.cluener import TYPES

    src = tmp_path / "dev.json"
    one = {"text": "彭小军认为台湾和台湾", "label": {"name": {"彭小军": [[0, 2]]},
           "address": {"台湾": [[5, 6], [8, 9]]}}}  # fmt: skip
    two = {"text": "没有实体", "label": {}}
    src.write_text(json.dumps(one, ensure_ascii=False, indent=4) + "\n" + json.dumps(two) + "\n")
    dst = tmp_path / "dev.jsonl"
    assert convert(str(src), str(dst), to="alpaca", source="cluener") == 2
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    answer = json.loads(rows[0]["output"])
    assert list(answer) == list(TYPES)
    assert answer["name"] == ["彭小军"] and answer["address"] == ["台湾", "台湾"]
    assert rows[0]["instruction"] == one["text"] and json.loads(rows[1]["output"])["name"] == []
    assert convert(str(src), str(tmp_path / "m.jsonl"), to="messages", source="cluener") == 2

    bad = dict(one, label={"name": {"彭小": [[0, 2]]}})
    src.write_text(json.dumps(two) + "\n" + json.dumps(bad, ensure_ascii=False) + "\n")
    with pytest.raises(DataError, match=r"dev.json:line 2.*彭小"):
        convert(str(src), str(dst), to="alpaca", source="cluener")
