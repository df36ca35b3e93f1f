"""Label-preserving augmentation: the text around copied values changes, the answer stays right."""

from __future__ import annotations

import json

from slmtune.data.augment import augment
from slmtune.data.synth import synthesize
from slmtune.data.types import Example, Message


def _example(text: str, answer: dict | str) -> Example:
    content = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
    return Example(
        [Message("system", "抽取"), Message("user", text), Message("assistant", content)]
    )


def _copies(records: list[dict], k: int) -> list[tuple[Example, Example]]:
    examples = [_example(r["instruction"], json.loads(r["output"])) for r in records]
    pairs = []
    for e in examples:
        for new in augment([e], k, seed=len(pairs)):
            pairs.append((e, new))
    return pairs


def test_copies_keep_every_value_and_the_answer():
    pairs = _copies(synthesize("complaints", 60, seed=4), 2)
    assert len(pairs) >= 100  # nearly every record gets its copies
    changed = 0
    for old, new in pairs:
        assert new.answer == old.answer and new.messages[0] == old.messages[0]
        text, before = new.messages[1].content, old.messages[1].content
        changed += text != before
        for value in json.loads(new.answer).values():
            if value is not None:
                assert text.count(value) == before.count(value), (value, text)
    assert changed == len(pairs)


def test_list_answers_keep_the_order_of_appearance():
    text = "彭小军认为，国内银行现在走的是台湾的发卡模式；李明说上海也一样。"
    answer = {"name": ["彭小军", "李明"], "address": ["台湾", "上海"]}
    for seed in range(20):
        for new in augment([_example(text, answer)], 1, seed=seed):
            out = new.messages[1].content
            assert out.index("彭小军") < out.index("李明")
            assert out.index("台湾") < out.index("上海")


def test_records_that_are_not_extraction_get_no_copies():
    assert augment([_example("你好", "你好，有什么可以帮您？")], 3) == []
    assert augment([_example("今天天气", {"weather": "晴"})], 3) == []  # nothing copied


def test_some_copies_drop_the_labels_and_keep_the_values():
    text = "姓名：张三\n地址：北京市朝阳区建国路1号\n问题：路灯坏了一个月"
    answer = {"name": "张三", "address": "北京市朝阳区建国路1号", "question": "路灯坏了一个月"}
    unlabelled = 0
    for seed in range(60):
        for new in augment([_example(text, answer)], 1, seed=seed):
            out = new.messages[1].content
            assert all(out.count(v) == 1 for v in answer.values()), out
            unlabelled += "姓名" not in out
    assert unlabelled >= 3
