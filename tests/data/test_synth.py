"""Synthetic complaints: deterministic, labels copied from the text, and genuinely varied."""

from __future__ import annotations

import json
import re

import pytest

from slmtune.data.synth import synthesize
from slmtune.data.synth._fragments import ADDRESS_LABELS, EMAIL_LABELS, NAME_LABELS, QUESTION_LABELS
from slmtune.data.synth.complaints import COMPLAINT_SYSTEM_PROMPT
from slmtune.errors import SlmtuneError

RECORDS = synthesize("complaints", 500, seed=0)
LABELS = [json.loads(r["output"]) for r in RECORDS]


def test_deterministic_for_a_seed():
    assert synthesize("complaints", 20, seed=0) == RECORDS[:20]
    assert synthesize("complaints", 20, seed=1) != RECORDS[:20]


def test_alpaca_records_with_the_seeds_system_prompt_and_exact_keys():
    for r, label in zip(RECORDS, LABELS, strict=True):
        assert r["system"] == COMPLAINT_SYSTEM_PROMPT
        assert list(label) == ["name", "address", "email", "question"]


def test_every_value_is_copied_verbatim_from_the_text():
    for r, label in zip(RECORDS, LABELS, strict=True):
        for value in label.values():
            assert value is None or value in r["instruction"]


def test_fields_are_sometimes_absent():
    for key in ("name", "address", "email", "question"):
        rate = sum(label[key] is None for label in LABELS) / len(LABELS)
        assert 0.03 <= rate <= 0.3, (key, rate)


def test_distractor_phone_numbers_are_never_labelled():
    for r, label in zip(RECORDS, LABELS, strict=True):
        for phone in re.findall(r"1[35789]\d{9}", r["instruction"]):
            assert all(phone != v for v in label.values())


def test_texts_and_complaints_are_diverse():
    assert len({r["instruction"] for r in RECORDS}) >= 0.95 * len(RECORDS)
    questions = [label["question"] for label in LABELS if label["question"]]
    assert len(set(questions)) >= 0.8 * len(questions)


@pytest.mark.parametrize("words", [NAME_LABELS, ADDRESS_LABELS, EMAIL_LABELS, QUESTION_LABELS])
def test_many_label_words_are_used(words):
    used = {w for w in words if any(w in r["instruction"] for r in RECORDS)}
    assert len(used) >= 5


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(SlmtuneError, match="complaints"):
        synthesize("recipes", 1, seed=0)


POLICY = synthesize("policy-pages", 200, seed=0)


def test_policy_pages_are_deterministic_and_labelled_from_the_text():
    assert synthesize("policy-pages", 5, seed=0) == POLICY[:5]
    for r in POLICY:
        label = json.loads(r["output"])
        assert list(label) == ["title", "publishtime", "content"]
        assert label["title"] in r["instruction"] and label["content"] in r["instruction"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", label["publishtime"])


def test_policy_publishtime_is_the_publication_date_not_the_drafting_date():
    for r in POLICY:
        label = json.loads(r["output"])
        shown = re.search(r"发布(?:日期|时间)：(\d{4})\D(\d{1,2})\D(\d{1,2})", r["instruction"])
        y, m, d = (int(x) for x in shown.groups())
        assert label["publishtime"] == f"{y:04d}-{m:02d}-{d:02d}"
    assert any("ICP备" in r["instruction"] and "成文日期" in r["instruction"] for r in POLICY)


@pytest.mark.parametrize("task", ["complaints", "policy-pages"])
def test_held_out_forms_are_labelled_like_the_task_and_share_no_layout(task):
    from slmtune.data.synth.unseen import COMPLAINT_FORMS, POLICY_FORMS

    unseen = synthesize(f"{task}-unseen", 60, seed=0)
    assert unseen == synthesize(f"{task}-unseen", 60, seed=0)
    forms = COMPLAINT_FORMS if task == "complaints" else POLICY_FORMS
    assert {r["form"] for r in unseen} == set(forms)
    trained = synthesize(task, 60, seed=0)
    assert trained[0]["system"] == unseen[0]["system"]  # the same task and instruction
    keys = list(json.loads(trained[0]["output"]))
    for record in unseen:
        label = json.loads(record["output"])
        assert list(label) == keys
        copied = [v for k, v in label.items() if k != "publishtime" and v is not None]
        assert all(v in record["instruction"] for v in copied)
    # no training text's first line (its layout's opening) starts a held-out text
    openings = {r["instruction"].splitlines()[0][:8] for r in trained}
    assert not any(r["instruction"][:8] in openings for r in unseen)
