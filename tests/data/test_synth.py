"""Synthetic complaints: deterministic, labels copied from the text, and genuinely varied."""

from __future__ import annotations

import csv
import json
import re

import pytest

from slmtune.data.synth import synthesize
from slmtune.data.synth._fragments import (
    ADDRESS_LABELS,
    EMAIL_LABELS,
    HANDLER_LABELS,
    NAME_LABELS,
    QUESTION_LABELS,
    STAFF_ACTS,
    STAFF_ENDS,
)
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
    labelled = 0
    for r in POLICY:
        label = json.loads(r["output"])
        shown = re.search(r"发布(?:日期|时间)：(\d{4})\D(\d{1,2})\D(\d{1,2})", r["instruction"])
        if shown:  # else the date stands in a source line without a label word
            y, m, d = (int(x) for x in shown.groups())
            assert label["publishtime"] == f"{y:04d}-{m:02d}-{d:02d}"
            labelled += 1
    assert labelled >= len(POLICY) // 2
    assert any("ICP备" in r["instruction"] and "成文日期" in r["instruction"] for r in POLICY)


def test_policy_layouts_vary_where_the_title_and_the_date_stand():
    texts = [r["instruction"] for r in POLICY]
    titles = [json.loads(r["output"])["title"] for r in POLICY]
    once = sum(t.count(title) == 1 for t, title in zip(texts, titles, strict=True))
    assert 0.2 * len(POLICY) <= once <= 0.9 * len(POLICY)  # breadcrumbs repeat it, not always
    assert any("\n" in json.loads(r["output"])["content"] for r in POLICY)  # several paragraphs
    assert any(t.count("\n") == 0 for t in texts)  # flattened by the crawler


def test_policy_bodies_mostly_run_over_lines_and_never_start_with_the_addressee_line():
    from slmtune.data.synth.policy_pages import ADDRESSEES

    contents = [json.loads(r["output"])["content"] for r in POLICY]
    addressed = [r for r in POLICY if any(a in r["instruction"] for a in ADDRESSEES)]
    assert len(addressed) >= 0.2 * len(POLICY)
    assert not any(a in c for a in ADDRESSEES for c in contents)
    assert any("\n\n" in c for c in contents) and any("\n\u3000\u3000" in c for c in contents)
    assert sum("\n" in c for c in contents) >= 0.7 * len(contents)  # most run over lines
    numbered = re.compile(r"\n\u3000*(?:[二三四]、|第[二三四]条|（[二三四]）|[234]\.)")
    assert sum(bool(numbered.search(c)) for c in contents) >= 0.1 * len(contents)


def test_the_issuing_offices_header_and_signature_are_said_but_never_title_or_content():
    headed = signed = 0
    for r in POLICY:
        label, lines = json.loads(r["output"]), re.split(r"\n| (?=\S+市)", r["instruction"])
        office = [x for x in lines if re.fullmatch(r"\S+市\S+(?:文件|公报  \d{4}年第\d+期)", x)]
        headed += bool(office)
        assert not any(label["title"] in x or x in label["content"] for x in office)
        after = r["instruction"].split(label["content"], 1)[1].lstrip()
        if re.match(r"\S+市\S+\s+\d{4}\D", after):  # the office, then a date
            signed += 1
            assert after.split()[0] not in label["title"]
    assert headed >= 0.15 * len(POLICY) and signed >= 0.15 * len(POLICY)


def test_a_page_whose_only_date_is_under_the_signature_was_published_on_it():
    bare = 0
    for r in POLICY:
        label, text = json.loads(r["output"]), r["instruction"]
        # a metadata table or a source line
        if re.search("发布日期|发布时间|发布机构|成文日期|来源：|作者：", text):
            continue
        after = text.split(label["content"], 1)[1]
        signed = re.match(r"\s+\S+市\S+\s+(\d{4})\D(\d{1,2})\D(\d{1,2})", after)
        if signed:
            y, m, d = (int(x) for x in signed.groups())
            assert label["publishtime"] == f"{y:04d}-{m:02d}-{d:02d}"
            bare += 1
    assert bare >= 0.05 * len(POLICY)


def test_other_peoples_names_and_mailboxes_are_never_the_answer():
    from slmtune.data.synth._fragments import STAFF_ROLES

    staff = re.compile("(?:" + "|".join(STAFF_ROLES) + r")([\u4e00-\u9fff]{2,3}?)(?:说|让|答应|：)")
    seen = 0
    for r, label in zip(RECORDS, LABELS, strict=True):
        for mailbox in re.findall(r"(?:kefu|service|tousu|support|gd)@[\w.-]+", r["instruction"]):
            assert label["email"] != mailbox
            seen += 1
        for name in staff.findall(r["instruction"]):
            assert label["name"] != name
    assert seen >= 50


def test_complaints_run_from_one_short_clause_to_several():
    questions = [label["question"] for label in LABELS if label["question"]]
    clauses = [len(q.split("，")) for q in questions]
    assert sum(n == 1 for n in clauses) >= 0.12 * len(questions)  # just what happened
    assert sum(n >= 4 for n in clauses) >= 0.1 * len(questions)


def test_handles_regions_titles_and_other_cases_are_said_but_never_the_answer():
    from slmtune.data.synth import _fragments as F

    said = {"handle": 0, "region": 0, "other case": 0}
    for r in synthesize("complaints", 1500, seed=1):  # handles are rare: a larger sample
        text, label = r["instruction"], json.loads(r["output"])
        for handle in re.findall("(?:" + "|".join(F.HANDLE_LABELS) + r")\S{0,3}?([a-z]\w+)", text):
            assert label["name"] != handle
            said["handle"] += 1
        for region in F.REGIONS:
            if any(f"{k}：{region}" in text or f"{k} {region}" in text for k in F.REGION_LABELS):
                assert label["address"] != region
                said["region"] += 1
        for case in re.findall(
            "(?:历史工单：|关联工单：|上次反映的“|也说|楼下[\u4e00-\u9fff]{2,3}：)([^（”。\n]+)",
            text,
        ):
            assert label["question"] != case
            said["other case"] += 1
    assert all(n >= 5 for n in said.values()), said


@pytest.mark.parametrize("held_out", ["unseen", "unseen-b", "unseen-c", "unseen-d", "unseen-e"])
@pytest.mark.parametrize("task", ["complaints", "policy-pages"])
def test_held_out_forms_are_labelled_like_the_task_and_share_no_layout(task, held_out):
    from slmtune.data.synth import unseen, unseen_b, unseen_c, unseen_d, unseen_e

    sets = {"unseen": unseen, "unseen-b": unseen_b, "unseen-c": unseen_c, "unseen-d": unseen_d,
            "unseen-e": unseen_e}  # fmt: skip
    unseen = synthesize(f"{task}-{held_out}", 60, seed=0)
    assert unseen == synthesize(f"{task}-{held_out}", 60, seed=0)
    module = sets[held_out]
    forms = module.COMPLAINT_FORMS if task == "complaints" else module.POLICY_FORMS
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


def test_a_plea_after_the_complaint_is_said_but_never_part_of_it():
    from slmtune.data.synth import _fragments as F

    # a plea is a known phrase or one composed from parts; these are how each kind starts
    rhetoric = {r.format(who=who)[:3] for r in F.RHETORIC for who in F.ASKED}
    rhetoric |= {who + ask for who in ["", *F.ASKED] for ask in F.RHETORIC_ASK}
    starts = (*F.PLEAS, *F.PLEA_ASK, *F.PLEA_WAIT, *F.OUTCRIES, *F.OUTCRY_HOW, *rhetoric,
              *F.THANKS)  # fmt: skip
    questions, pleas = 0, []
    for r, label in zip(RECORDS, LABELS, strict=True):
        question = label["question"]
        if question is None:
            continue
        questions += 1
        assert not any(p in question for p in (*F.PLEAS, *F.OUTCRIES, *F.THANKS))
        after = r["instruction"].split(question, 1)[1].lstrip("，。！ ")
        pleas += [after[:6]] if after.startswith(starts) else []
    # mostly right after it, in the same sentence or the next, and seldom the same twice:
    # the model is to learn what a plea says, not a list of them
    assert len(pleas) >= 0.5 * questions and len(set(pleas)) >= 0.4 * questions


def _spreadsheet(text: str) -> dict | None:
    """A header row above a values row (CSV, tab-separated or Markdown) as {column: cell};
    a greeting may lead the header, a trailer follow the values."""
    lines = text.split("\n")
    for i, header in enumerate(lines[:-1]):
        if header.endswith(" |") and lines[i + 1].startswith("| ---"):
            rows = (header, lines[i + 2])
            cells = [row[row.index("| ") + 2 : row.rindex(" |")].split(" | ") for row in rows]
            return dict(zip(*cells, strict=True))
        for sep in ("\t", ","):
            rows = list(csv.reader(lines[i : i + 2], delimiter=sep))
            if len(rows[0]) >= 4 and len(rows[0]) == len(rows[1]):
                return dict(zip(*rows, strict=True))
    return None


# a case handler's label: a known one or composed (what they do and an ending)
HANDLERS = (*HANDLER_LABELS, *(a + e for a in STAFF_ACTS for e in STAFF_ENDS))


def test_some_labelled_texts_are_a_spreadsheet_export_whose_handler_is_not_the_name():

    tables = 0
    for r, label in zip(RECORDS, LABELS, strict=True):
        cells = _spreadsheet(r["instruction"])
        if cells is None:
            continue
        tables += 1
        handler = next((v for k, v in cells.items() if k.endswith(HANDLERS)), None)
        assert handler is None or label["name"] != handler
    assert tables >= 15  # a header row of column names above the values row


def test_a_name_is_often_labelled_by_a_role_and_a_handlers_role_never_labels_the_name():
    from slmtune.data.synth import _fragments as F

    separators = "|".join(re.escape(s) for s in F.SEPARATORS)
    handlers = "|".join(HANDLERS)
    roles = set()
    for r, label in zip(RECORDS, LABELS, strict=True):
        text = r["instruction"]
        if label["name"]:
            before = rf"([\u4e00-\u9fa5]{{1,4}}(?:人姓名|人|者))(?:{separators}){re.escape(label['name'])}"
            roles.update(re.findall(before, text))
        for named in re.findall(rf"(?:{handlers})(?:{separators})([\u4e00-\u9fa5]{{2,3}})", text):
            name = label["name"]  # (unless a handler happens to share the sender's name)
            assert not (name and named.startswith(name)) or text.count(name) > 1
    # the model is to read whose role a label names (the sender's or a handler's), not
    # remember a few words; the old generator's named by six (投诉人, 联系人, 来电人, 发件人…)
    assert len(roles) >= 12, sorted(roles)


def test_a_mailbox_is_labelled_by_whose_it_is_and_a_staff_members_is_never_the_answer():
    from slmtune.data.synth import _fragments as F

    separators = "|".join(re.escape(s) for s in F.SEPARATORS)
    mail = "|".join(re.escape(w) for w in F.MAIL_WORDS)
    address = r"([\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    senders = "|".join(F.SENDER_ROLES)
    staff = "|".join([*F.STAFF_ROLES, *F.STAFF_ACTS])
    said = "|".join(re.escape(s.split("{")[0]) for s in F.STAFF_MAIL_SAYS)
    by_sender = by_staff = 0
    for r, label in zip(RECORDS, LABELS, strict=True):
        text = r["instruction"]
        for found in re.findall(
            rf"(?:{senders})(?:人|者)(?:{mail})(?:{separators}){address}", text
        ):
            assert label["email"] == found
            by_sender += 1
        staffs = re.findall(rf"(?:{staff})(?:人|员)?(?:{mail})(?:{separators}){address}", text)
        staffs += re.findall(rf"(?:{said}){address}", text)
        for found in staffs:
            assert label["email"] != found
            by_staff += 1
    assert by_sender >= 20 and by_staff >= 30, (by_sender, by_staff)


def test_the_sender_often_says_who_they_are_and_the_complaint_in_one_sentence():
    """The complaint starts right after the sender's own clause: "本人王芳，家里的宽带…"."""
    own = r"(?:我是|我叫|本人|我这边是|鄙人|住在|家住|我家在|地址在|住址是)[^，。\n]{1,40}，"
    joined = sum(
        bool(label["question"] and re.search(own + re.escape(label["question"]), r["instruction"]))
        for r, label in zip(RECORDS, LABELS, strict=True)
    )
    assert joined >= 0.08 * len(RECORDS), joined  # (4.8 % before, in relayed texts only)


def test_a_mailbox_the_organisation_answers_with_or_the_sender_wrote_to_is_never_the_answer():
    """官方回复：请把截图发到kefu@… and 之前发邮件到kefu@…反映过 name someone else's mailbox."""
    from slmtune.data.synth import _fragments as F

    address = r"([\w.+-]+@[\w-]+(?:\.[\w-]+)+)"
    who = "|".join([*(re.escape(w) for w in F.REPLY_WHO), r"\w+(?:回复|答复)"])
    answer = re.compile(rf"^(?:{who})(?:[：: ]|(?<=】)).*?{address}", re.M)
    wrote = re.compile("|".join(re.escape(s).replace(r"\{m\}", address) for s in F.SENDER_WROTE))
    answered = told = 0
    for r, label in zip(RECORDS, LABELS, strict=True):
        for found in answer.findall(r["instruction"]):
            assert label["email"] != found
            answered += 1
        for found in wrote.findall(r["instruction"]):
            assert label["email"] not in {m for m in found if m}
            told += 1
    assert answered >= 0.08 * len(RECORDS) and told >= 5, (answered, told)
