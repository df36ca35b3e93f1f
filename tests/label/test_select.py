"""Which texts `label --select` picks: random, diverse (covers the pool), uncertain (the
student's doubt)."""

from __future__ import annotations

import json
import random

import pytest

from slmtune.config import DecodeConfig, LabelConfig
from slmtune.infer.driver import answer_all, requests_for
from slmtune.label.label import label
from slmtune.label.oracle import oracle_app
from slmtune.label.select import select
from slmtune.run import open_run
from tests.serve.harness import Server

FORMS = {  # four kinds of text; the first fills most of the pool
    "mail": "发件人：{n}\n主题：投诉\n\n您好，我家的网络已经断了{k}天，请尽快处理。\n--\n{n}",
    "sms": "【短信】{n}:停电{k}小时了!!!",
    "table": "| 字段 | 值 |\n|---|---|\n| 姓名 | {n} |\n| 问题 | 电表读数{k}度异常 |",
    "call": "坐席：您好。\n客户：我是{n}，水费涨了{k}倍。\n坐席：好的，已记录。",
}


def pool(sizes: dict[str, int]) -> tuple[list[str], list[str]]:
    rng = random.Random(1)
    texts, kinds = [], []
    for kind, n in sizes.items():
        for _ in range(n):
            name = rng.choice("张王李赵刘陈") + rng.choice("伟芳娜敏静强磊军")
            texts.append(FORMS[kind].format(n=name, k=rng.randint(2, 99)))
            kinds.append(kind)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [kinds[i] for i in order]


def test_random_is_seeded_and_sorted():
    texts = [f"t{i}" for i in range(50)]
    picked = select("random", texts, 10, seed=3)
    assert picked == sorted(picked) and len(set(picked)) == 10
    assert picked == select("random", texts, 10, seed=3) != select("random", texts, 10, seed=4)
    assert select("random", texts, 80) == list(range(50))  # the budget covers the pool


def test_diverse_covers_every_kind_of_text_in_the_pool():
    texts, kinds = pool({"mail": 70, "sms": 10, "table": 10, "call": 10})
    for seed in range(3):
        picked = select("diverse", texts, 4, seed=seed)
        assert len(picked) == 4 and picked == sorted(picked)
        assert {kinds[i] for i in picked} == set(FORMS)
    # the baseline it beats: a random 4 of this pool misses a kind most of the time
    misses = sum(
        {kinds[i] for i in select("random", texts, 4, seed=s)} != set(FORMS) for s in range(20)
    )
    assert misses > 10


def test_uncertain_picks_the_answers_the_student_doubts_most(tiny_run):
    texts = [f"我叫用户{i}，邮箱u{i}@qq.com" for i in range(4)] + ["？？", "电费", "abc", "——"]
    picked = select("uncertain", texts, 3, student=str(tiny_run), candidates=len(texts))
    opened = open_run(str(tiny_run))
    requests = requests_for(opened, texts, DecodeConfig())
    for r in requests:
        r.logprobs = True
    answers = answer_all(opened, requests, batch_size=8)
    mean = [sum(a.logprobs) / len(a.logprobs) for a in answers]
    assert all(a.finished for a in answers)
    assert picked == sorted(sorted(range(len(texts)), key=lambda i: mean[i])[:3])


def test_label_select_labels_only_the_chosen_records_and_keeps_them_on_rerun(tmp_path):
    texts, kinds = pool({"mail": 30, "sms": 4, "table": 4, "call": 4})
    raw = tmp_path / "raw.jsonl"
    raw.write_text(
        "".join(
            json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)
        )
    )
    gold = {t: json.dumps({"kind": k}) for t, k in zip(texts, kinds, strict=True)}
    server = Server(oracle_app(gold))
    try:
        cfg = LabelConfig(
            teacher_url=f"{server.url}/v1", teacher_model="oracle", system="分类",
            select="diverse", budget=4,
        )  # fmt: skip
        out = tmp_path / "out.jsonl"
        summary = label(str(raw), str(out), cfg, quiet=True)
        again = label(str(raw), str(out), cfg, quiet=True)  # complete: nothing asked again
        requests = server.server.config.app.state.requests
    finally:
        server.stop()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["labelled"] == 4 and requests == 4 and again == summary
    assert {json.loads(r["output"])["kind"] for r in rows} == set(FORMS)
    chosen = json.loads((tmp_path / "out.jsonl.selection.json").read_text())["positions"]
    assert [r["id"] for r in rows] == chosen


def test_uncertain_without_a_student_is_an_error():
    with pytest.raises(Exception, match="--select uncertain needs --student"):
        select("uncertain", ["a", "b", "c"], 1)


def test_a_budget_alone_selects_diverse():
    from slmtune.config import LabelConfig

    base = {"teacher_url": "http://127.0.0.1:1/v1", "teacher_model": "m", "system": "抽取"}
    assert LabelConfig(**base, budget=10).select == "diverse"
    assert LabelConfig(**base).select is None  # no budget: every text is labelled
    assert LabelConfig(**base, budget=10, select="random").select == "random"
