"""`slmtune data check`: is this dataset usable, and what does it look like in tokens?"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from slmtune.chat.render import IGNORE
from slmtune.config import DEFAULT_MAX_LENGTH
from slmtune.data.load import iter_examples
from slmtune.data.types import Example
from slmtune.errors import Problem


@dataclass
class CheckReport:
    path: str
    records: int = 0
    valid: int = 0
    invalid: int = 0
    formats: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    roles: Counter = field(default_factory=Counter)
    turns: list[int] = field(default_factory=list)
    exact_duplicates: int = 0
    conflicting_duplicates: int = 0
    prompt_tokens: list[int] = field(default_factory=list)
    answer_tokens: list[int] = field(default_factory=list)
    max_length: int = DEFAULT_MAX_LENGTH
    too_long: int = 0


def _prompt_key(e: Example) -> str:
    return "\x1f".join(" ".join(m.content.split()) for m in e.prompt_messages)


def check_dataset(
    path: str | Path,
    tokenizer=None,
    fmt: str = "auto",
    max_length: int = DEFAULT_MAX_LENGTH,
    render: Callable[[Example], tuple[list[int], list[int]]] | None = None,
) -> CheckReport:
    report = CheckReport(str(path), max_length=max_length)
    seen_pairs: Counter = Counter()
    answers_by_prompt: dict[str, set] = {}
    bad = set()
    for source, item in iter_examples(path, fmt):
        if isinstance(item, Problem):
            report.problems.append(item)
            bad.add(source)
            continue
        report.valid += 1
        report.roles.update(m.role for m in item.messages)
        report.turns.append(sum(m.role == "assistant" for m in item.messages))
        key = _prompt_key(item)
        seen_pairs[(key, item.answer)] += 1
        answers_by_prompt.setdefault(key, set()).add(item.answer)
        if render is not None:
            ids, labels = render(item)
            first = next((i for i, lab in enumerate(labels) if lab != IGNORE), len(labels))
            report.prompt_tokens.append(first)
            report.answer_tokens.append(sum(lab != IGNORE for lab in labels))
            report.too_long += len(ids) > max_length
        elif tokenizer is not None:
            prompt = "\n".join(m.content for m in item.prompt_messages)
            p, a = (
                len(tokenizer(prompt)["input_ids"]),
                len(tokenizer(item.answer or "")["input_ids"]),
            )
            report.prompt_tokens.append(p)
            report.answer_tokens.append(a)
            report.too_long += p + a > max_length
    report.invalid = len(bad)
    report.records = report.valid + report.invalid
    report.exact_duplicates = sum(n - 1 for n in seen_pairs.values())
    report.conflicting_duplicates = sum(
        1 for answers in answers_by_prompt.values() if len(answers) > 1
    )
    return report


def percentiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {}
    s = sorted(values)
    pick = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": s[-1]}


def format_report(r: CheckReport, limit: int = 50) -> str:
    lines = []
    if r.problems:
        lines.append(f"{len(r.problems)} problem(s) in {r.invalid} invalid record(s):")
        lines += [f"  {p}" for p in r.problems[:limit]]
        if len(r.problems) > limit:
            lines.append(f"  ... and {len(r.problems) - limit} more")
        lines.append("")
    lines.append(f"{r.path}: {r.records} records, {r.valid} valid, {r.invalid} invalid")
    if r.valid:
        roles = ", ".join(f"{k} {v}" for k, v in sorted(r.roles.items()))
        lines.append(f"  roles: {roles}")
        lines.append(
            f"  assistant turns per example: min {min(r.turns)}, "
            f"mean {sum(r.turns) / len(r.turns):.1f}, max {max(r.turns)}"
        )
        lines.append(
            f"  duplicates: {r.exact_duplicates} exact, "
            f"{r.conflicting_duplicates} prompts with conflicting answers"
        )
    if r.prompt_tokens:
        for name, values in (
            ("prompt tokens", r.prompt_tokens),
            ("answer tokens", r.answer_tokens),
        ):
            pct = percentiles(values)
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in pct.items()))
        lines.append(
            f"  longer than --max-length {r.max_length}: {r.too_long}"
            + (" (prompts will be shortened in training)" if r.too_long else "")
        )
    return "\n".join(lines)
