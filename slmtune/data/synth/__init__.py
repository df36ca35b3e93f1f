"""Deterministic synthetic demo data for the seeds' two tasks (alpaca records)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from slmtune.data.synth.complaints import generate_complaints
from slmtune.data.synth.policy_pages import generate_policy_pages
from slmtune.data.synth.unseen import generate_unseen_complaints, generate_unseen_policy_pages
from slmtune.data.synth.unseen_b import (
    generate_unseen_b_complaints,
    generate_unseen_b_policy_pages,
)
from slmtune.data.synth.unseen_c import (
    generate_unseen_c_complaints,
    generate_unseen_c_policy_pages,
)
from slmtune.data.synth.unseen_d import (
    generate_unseen_d_complaints,
    generate_unseen_d_policy_pages,
)
from slmtune.data.synth.unseen_e import (
    generate_unseen_e_complaints,
    generate_unseen_e_policy_pages,
)
from slmtune.errors import SlmtuneError

GENERATORS: dict[str, Callable[[int, int], list[dict]]] = {
    "complaints": generate_complaints,
    "policy-pages": generate_policy_pages,
    # held-out forms, written apart from the two above: for evaluation only, never training
    "complaints-unseen": generate_unseen_complaints,
    "policy-pages-unseen": generate_unseen_policy_pages,
    "complaints-unseen-b": generate_unseen_b_complaints,
    "policy-pages-unseen-b": generate_unseen_b_policy_pages,
    "complaints-unseen-c": generate_unseen_c_complaints,
    "policy-pages-unseen-c": generate_unseen_c_policy_pages,
    "complaints-unseen-d": generate_unseen_d_complaints,
    "policy-pages-unseen-d": generate_unseen_d_policy_pages,
    "complaints-unseen-e": generate_unseen_e_complaints,
    "policy-pages-unseen-e": generate_unseen_e_policy_pages,
}


def synthesize(task: str, n: int, seed: int) -> list[dict]:
    """`n` labelled records of a demo task; the same seed gives the same records."""
    if task not in GENERATORS:
        raise SlmtuneError(f"unknown synthetic task '{task}': use one of {', '.join(GENERATORS)}")
    return GENERATORS[task](n, seed)


def write_jsonl(records: list[dict], path: str | Path) -> None:
    """Write atomically: a temp file renamed into place, never a half-written output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
