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


def test_the_parts_with_values_keep_their_order_and_other_labels_stay():
    """Order and labels can be the evidence: a page's heading comes before its body; a
    distractor is told apart by its label; a normalised date is found by its label."""
    text = (
        "首页 > 政策文件 > 关于路灯维修的通知\n发布日期：2023-5-31\n关于路灯维修的通知\n"
        "各小区路灯由街道统一维修。\n转办人邮箱：grid@gov.cn\n联系人：张三"
    )
    answer = {"title": "关于路灯维修的通知", "publishtime": "2023-05-31",
              "content": "各小区路灯由街道统一维修。", "name": "张三"}  # fmt: skip
    moved = 0
    for seed in range(60):
        for new in augment([_example(text, answer)], 1, seed=seed):
            out = new.messages[1].content
            assert out.index("各小区") < out.index("张三")
            assert out.rindex("关于路灯维修的通知") < out.index("各小区")
            assert "发布日期" in out and "转办人邮箱" in out
            moved += out.index("转办人邮箱") > out.index("张三")
    assert moved >= 3  # the parts without values do move


def test_a_values_edges_stay_visible_and_a_normalised_fields_label_stays():
    """Glue never uses characters the values hold (a body full of 。 and ， glued with them
    would show no end), and a field that is only sometimes copied (a date written as the
    answer writes it in one record, not in another) keeps its label."""
    page = "首页 > 通知\n发布日期：2023-05-31\n关于路灯维修的通知\n路灯由街道维修，费用由财政承担。\n附件：表格"
    answer = {"title": "关于路灯维修的通知", "publishtime": "2023-05-31",
              "content": "路灯由街道维修，费用由财政承担。"}  # fmt: skip
    other = _example("发布日期：2023年6月1日\n通知\n正文。", {"title": "通知", "publishtime":
                     "2023-06-01", "content": "正文。"})  # fmt: skip
    body = answer["content"]
    for seed in range(80):
        for new in augment([_example(page, answer), other], 1, seed=seed)[:1]:
            out = new.messages[1].content
            start = out.index(body)
            after, before = out[start + len(body) : start + len(body) + 1], out[start - 1 : start]
            assert after not in list("，。") and before not in list("，。"), out
            assert "发布日期" in out
