"""The evaluator on hand-written predictions, with exact expected numbers."""

from __future__ import annotations

import json

import pytest

from slmtune.evaluate.metrics import (
    char_f1,
    char_similarity,
    detect_task,
    rouge_l,
    score,
    score_json,
)
from slmtune.run import parse_json_answer


def j(**kw) -> str:
    return json.dumps(kw, ensure_ascii=False)


def test_parse_tolerates_fences_and_stray_text():
    assert parse_json_answer('```json\n{"a": 1}\n```') == ({"a": 1}, None)
    assert parse_json_answer('Sure! {"a": "x}y"} hope it helps')[0] == {"a": "x}y"}
    assert parse_json_answer("[1, 2]") == (None, "JSON list, not an object")
    assert parse_json_answer('{"a": ') == (None, "not valid JSON")
    assert parse_json_answer("  ") == (None, "empty answer")


def test_json_scoring_exact_numbers():
    refs = [
        j(name="张三", email="a@b.com"),  # 1: right, fenced
        j(name="李四", email=None),  # 2: right (null vs absent)
        j(name="王五", email="w@x.com"),  # 3: name wrong, email missing
        j(name="赵六", email=None),  # 4: unparsable
        j(name="钱七", email=None),  # 5: null ref but a value predicted; plus an extra key
    ]
    preds = [
        "```json\n" + j(name="张三", email="a@b.com") + "\n```",
        j(name="李四"),
        j(name="王六"),
        "not json at all",
        j(name="钱七", email="q@q.com", phone="123"),
    ]
    m = score_json(refs, preds)
    assert m["parse_rate"] == 0.8
    assert m["record_exact"] == 0.4  # records 1 and 2
    # (name, email) correct per record: (1,1) (1,1) (0,0) (0,0) (1,0) -> 5 / 10
    assert m["field_accuracy"] == 0.5
    assert m["per_field"]["name"]["accuracy"] == 0.6
    assert m["per_field"]["email"]["accuracy"] == 0.4
    # name: tp = 3 (1,2,5), record 3 wrong value = fp+fn, record 4 unparsable = fn
    assert (
        m["per_field"]["name"]["tp"],
        m["per_field"]["name"]["fp"],
        m["per_field"]["name"]["fn"],
    ) == (3, 1, 2)
    # email: tp 1; record 3 fn (missing); record 5 fp (null ref, value given)
    assert (
        m["per_field"]["email"]["tp"],
        m["per_field"]["email"]["fp"],
        m["per_field"]["email"]["fn"],
    ) == (1, 1, 1)
    assert m["missing_keys"] == 2  # email in records 2 and 3
    assert m["extra_keys"] == 1
    # micro: tp 4, fp 2 + 1 extra non-null, fn 3
    assert m["precision"] == round(4 / 7, 4) and m["recall"] == round(4 / 7, 4)
    assert m["per_record"][3]["parse_error"] == "not valid JSON"
    assert m["per_record"][4]["extra_keys"] == ["phone"]


def test_normalisation_full_width_whitespace_and_case():
    m = score_json([j(email="ABC@QQ.COM", code="A1")], [j(email="abc@qq.com", code="Ａ１ ")])
    assert m["field_accuracy"] == 1.0


def test_lists_compare_as_sets():
    refs = [j(tags=["a", "b"]), j(tags=["a", "b"])]
    m = score_json(refs, [j(tags=["b", "a"]), j(tags=["a"])])
    assert m["per_field"]["tags"]["scorer"] == "set"
    assert m["per_field"]["tags"]["accuracy"] == 0.5


def test_long_text_fields_judged_by_similarity_threshold():
    long_ref = "家里的宽带经常断网，一天断好几次，已经一个星期了，希望尽快处理，谢谢你们的帮助！"  # 40 chars
    assert len(long_ref) == 40
    close = long_ref[:-4]  # similarity 0.9 >= 0.8
    far = long_ref[:20]  # similarity 0.5 < 0.8
    m = score_json([j(q=long_ref), j(q=long_ref)], [j(q=close), j(q=far)])
    assert m["per_field"]["q"]["scorer"] == "similarity"
    assert m["per_field"]["q"]["accuracy"] == 0.5
    assert m["per_field"]["q"]["exact_match"] == 0.0
    assert m["per_field"]["q"]["mean_similarity"] == 0.7


def test_char_similarity():
    assert char_similarity("abcd", "abce") == 0.75
    assert char_similarity(None, "") == 1.0


def test_text_metrics_on_chinese_by_hand():
    # ref 我爱北京 / pred 我爱上海: 2 common chars of 4 and 4 -> F1 0.5; LCS 2 -> ROUGE-L 0.5
    assert char_f1("我爱北京", "我爱上海") == 0.5
    assert rouge_l("我爱北京", "我爱上海") == 0.5
    # LCS of 北京天安门 / 北天门 is 3: P = 1, R = 3/5 -> F = 0.75
    assert rouge_l("北京天安门", "北天门") == pytest.approx(0.75)
    m = score(["我爱北京", "你好"], ["我爱北京", "再见"])
    assert m["task"] == "text" and m["exact_match"] == 0.5 and m["rouge_l"] == 0.5


def test_detect_task():
    assert detect_task([j(a=1)] * 9 + ["free text"]) == "json"
    assert detect_task([j(a=1)] * 8 + ["x", "y"]) == "text"


def test_list_fields_get_entity_micro_f1():
    refs = [
        json.dumps({"name": ["张三", "李四"], "company": ["华为"]}),
        json.dumps({"name": [], "company": ["腾讯"]}),
    ]
    preds = [
        json.dumps({"name": ["张三"], "company": ["华为", "小米"]}),  # tp 2, fp 1, fn 1
        json.dumps({"name": ["王五"], "company": ["腾讯"]}),  # tp 1, fp 1
    ]
    m = score_json(refs, preds)
    assert (m["item_precision"], m["item_recall"]) == (0.6, 0.75)
    assert m["item_f1"] == round(2 * 0.6 * 0.75 / 1.35, 4)
    assert m["per_field"]["company"]["item_f1"] == round(2 * (2 / 3) * 1 / (5 / 3), 4)
