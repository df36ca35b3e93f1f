"""Label-preserving augmentation for extraction data: the same facts, laid out differently.

A company's texts never look like the training sample; a model that learned "the name comes
after 姓名：on the first line" fails on a mail or a transcript. `train --augment K` adds K
re-laid-out copies of each extraction record whose answer copies values from its input. Only
the text *around* the copied values changes, so the answer stays right:
- where the parts without a copied value sit (lines / clauses: menus, footers, metadata,
  distractors); the parts that hold values keep their order, because the order is often the
  evidence (a page's heading comes right before its body, a list answer follows the text);
- the glue between parts (line breaks, ，；| and spaces) and label separators (： : 、 space);
  never a glue made of characters the values themselves hold (a page's body is full of 。
  and ，: glued with them, where the body ends would no longer show);
- labels dropped in front of copied values ("姓名：张三" -> "张三": fields whose every value
  in the dataset is copied from its input, not a date that is copied only when it happens
  to be written in the answer's format), so a value is learned
  from what it is and not only from the word in front of it (real texts often carry no
  labels: a short message, a quote). Labels of the other parts stay: they are what tells a
  distractor from a value ("转办人邮箱"), or the only evidence of a normalised value
  ("发布日期：2023-5-31" -> "2023-05-31");
- full- / half-width of the surrounding ASCII letters, digits and punctuation;
- inserted distractors: numbers, dates, ids and filler that must not be extracted.
Values copied from the input are never touched, and a change that would make a value appear
where it did not (or vanish) is dropped. Generic: any alpaca / messages extraction dataset,
not tied to our generators.
"""

from __future__ import annotations

import random
import re

from slmtune.data.types import Example, Message, last_user_text
from slmtune.run.answer import parse_json_answer

SPLIT = re.compile(r"(\n+|[，。；;|]\s*)")  # part boundaries (kept as glue)
SEPARATORS = ["：", ":", "： ", " : ", " ", "、", "："]
GLUE = ["\n", "，", "；", " | ", "。", "  ", "\n\n", ", "]
FILLERS = ["麻烦尽快处理", "谢谢", "急", "如上", "详见附件", "以下是情况说明", "（已重复反映）"]
HALF = "".join(chr(c) for c in range(0x21, 0x7F))
FULL = "".join(chr(c + 0xFEE0) for c in range(0x21, 0x7F))
TO_FULL, TO_HALF = str.maketrans(HALF, FULL), str.maketrans(FULL, HALF)


def augment(examples: list[Example], copies: int, seed: int = 0) -> list[Example]:
    """`copies` re-laid-out versions of each extraction example (others are left out)."""
    rng = random.Random(seed)
    copied = copied_fields(examples)
    out = []
    for example in examples:
        for _ in range(copies):
            new = relayout(example, rng, copied)
            if new is not None:
                out.append(new)
    return out


def copied_fields(examples: list[Example]) -> set[str]:
    """The answer keys whose every value in the dataset is a piece of its input."""
    seen: dict[str, bool] = {}
    for example in examples:
        text = last_user_text(example.prompt_messages)
        answer, _ = parse_json_answer(example.answer or "")
        if text is None or not isinstance(answer, dict):
            continue
        for key, value in answer.items():
            strings = [v for v in _strings(value) if v]
            if strings:
                seen[key] = seen.get(key, True) and all(v in text for v in strings)
    return {key for key, ok in seen.items() if ok}


def relayout(example: Example, rng: random.Random, copied: set[str]) -> Example | None:
    """One re-laid-out copy, or None when the example is not extraction (no JSON answer
    with values copied from a single user turn). `copied`: copied_fields of the dataset."""
    text = last_user_text(example.prompt_messages)
    answer, _ = parse_json_answer(example.answer or "")
    if text is None or not isinstance(answer, dict):
        return None
    values = [v for v in _strings(answer) if v and v in text]  # kept intact, all of them
    labelled = [v for k in copied for v in _strings(answer.get(k)) if v and v in text]
    if not values:
        return None
    for _ in range(4):  # a change that breaks a value is retried, then given up
        new = _transform(text, values, labelled, rng)
        if new != text and _keeps(new, text, values):
            return _with_text(example, text, new)
    return None


def _transform(text: str, values: list[str], labelled: list[str], rng: random.Random) -> str:
    """`values`: every answer value in the text (kept intact, their parts in order);
    `labelled`: those of copied fields (their labels may go)."""
    parts, glues = _split(text, _places(text, values))
    if len(parts) > 2 and rng.random() < 0.5:
        parts = _move_free_parts(parts, values, rng)
    inside = set("".join(values)) - {" "}
    glue_choices = [g for g in GLUE if not (set(g) & inside)]
    if rng.random() < 0.5:  # ("  " is always a choice)
        glue = rng.choice(glue_choices)
        glues = [glue] * len(glues)
    if rng.random() < 0.5:
        sep = rng.choice(SEPARATORS)
        parts = [_reseparate(p, values, sep) for p in parts]
    if rng.random() < 0.3:
        parts = [_unlabel(p, values, labelled) if rng.random() < 0.5 else p for p in parts]
    if rng.random() < 0.4:
        for _ in range(rng.randint(1, 2)):
            at = rng.randrange(len(parts) + 1)
            parts.insert(at, _distractor(rng))
            glues.insert(min(at, len(glues)), rng.choice(glue_choices))
    new = parts[0] + "".join(g + p for g, p in zip(glues, parts[1:], strict=False))
    if rng.random() < 0.4:
        new = _rewidth(new, values, rng.choice([TO_FULL, TO_HALF]))
    return new


def _split(text: str, places: list[tuple[int, int]]) -> tuple[list[str], list[str]]:
    """Parts and the glue between them; never a cut inside a copied value. A value's own
    last character ('。' of a sentence) stays in the value; the line break after it is glue."""
    parts, glues, at = [], [], 0
    for m in SPLIT.finditer(text):
        cut = m.start()
        for start, end in places:
            if start < m.end() and cut < end:
                cut = max(cut, end)
        if cut >= m.end() or cut < at:
            continue
        parts.append(text[at:cut])
        glues.append(text[cut : m.end()])
        at = m.end()
    parts.append(text[at:])
    return parts, glues


def _move_free_parts(parts: list[str], values: list[str], rng: random.Random) -> list[str]:
    """The parts without a value go to random places; the others keep their order."""
    fixed = [p for p in parts if _holds_value(p, values)]
    for part in (p for p in parts if not _holds_value(p, values)):
        fixed.insert(rng.randrange(len(fixed) + 1), part)
    return fixed


def _holds_value(part: str, values: list[str]) -> bool:
    return any(v in part for v in values)


LABEL = re.compile(r"^([^\s：:]{1,8})(\s*[：:]\s*)(?=\S)")  # a part that starts with a label


def _reseparate(part: str, values: list[str], sep: str) -> str:
    """'姓名：张三' -> '姓名: 张三': the first separator of a part that starts with a label."""
    m = LABEL.match(part)
    if not m or any(v in m.group(1) for v in values):
        return part
    return m.group(1) + sep + part[m.end() :]


def _unlabel(part: str, values: list[str], labelled: list[str]) -> str:
    """'姓名：张三' -> '张三': the label and its separator go, the value stays. Only in front
    of a copied field's value: elsewhere the label may be the evidence (module docstring)."""
    m = LABEL.match(part)
    rest = part[m.end() :] if m else ""
    if not m or not _holds_value(rest, labelled) or any(v in m.group(1) for v in values):
        return part
    return part[m.end() :]


def _rewidth(text: str, values: list[str], table: dict) -> str:
    """Change the width of everything outside the copied values."""
    keep = sorted(_places(text, values))
    out, at = [], 0
    for start, end in keep:
        if start < at:
            continue
        out.append(text[at:start].translate(table))
        out.append(text[start:end])
        at = end
    out.append(text[at:].translate(table))
    return "".join(out)


def _places(text: str, values: list[str]) -> list[tuple[int, int]]:
    found = []
    for v in set(values):
        at = text.find(v)
        while at >= 0:
            found.append((at, at + len(v)))
            at = text.find(v, at + 1)
    return found


def _distractor(rng: random.Random) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return (
            f"电话{rng.choice(['：', ':', ''])}1{rng.randrange(3, 10)}{rng.randrange(10**8, 10**9)}"
        )
    if kind == 1:
        return f"编号{rng.randrange(10**6, 10**10)}"
    if kind == 2:
        return f"{rng.randrange(2019, 2027)}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日"
    if kind == 3:
        return f"{rng.randrange(1, 24):02d}:{rng.randrange(0, 60):02d}"
    return rng.choice(FILLERS)


def _keeps(new: str, old: str, values: list[str]) -> bool:
    """Every value is still there exactly as often as before."""
    return all(new.count(v) == old.count(v) for v in set(values))


def _strings(obj) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, list):
        return [s for x in obj for s in _strings(x)]
    if isinstance(obj, dict):
        return [s for x in obj.values() for s in _strings(x)]
    return []


def _with_text(example: Example, old: str, new: str) -> Example:
    messages = list(example.messages)
    last = max(i for i, m in enumerate(messages) if m.role == "user" and m.content == old)
    messages[last] = Message("user", new)
    return Example(messages, f"{example.source} (augmented)", dict(example.meta))
