"""`slmtune data convert` and `slmtune data split`. Outputs are written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

from slmtune.data.cluener import cluener_records
from slmtune.data.load import load_examples
from slmtune.data.readers import read_records
from slmtune.data.types import Example
from slmtune.errors import DataError, Problem, SlmtuneError

TARGETS = ("messages", "alpaca")
SOURCES = ("records", "cluener")  # --from: any readable data file, or a CLUENER2020 file


def to_alpaca(e: Example) -> dict:
    msgs = list(e.messages)
    out: dict = {}
    if msgs and msgs[0].role == "system":
        out["system"] = msgs.pop(0).content
    history, pending = [], None
    for m in msgs[:-2]:
        if m.role == "user":
            pending = m.content
        elif pending is not None:
            history.append([pending, m.content])
            pending = None
    out.update(
        {
            "instruction": msgs[-2].content if len(msgs) >= 2 else msgs[-1].content,
            "input": "",
            "output": msgs[-1].content if len(msgs) >= 2 else "",
        }
    )
    if history:
        out["history"] = history
    return {**out, **e.meta}


def convert(
    src: str, dst: str, to: str = "messages", fmt: str = "auto", source: str = "records"
) -> int:
    if to not in TARGETS:
        raise SlmtuneError(f"--to {to}: use one of {', '.join(TARGETS)}")
    if source not in SOURCES:
        raise SlmtuneError(f"--from {source}: use one of {', '.join(SOURCES)}")
    if source == "cluener":
        records = cluener_records(src)
        if to == "alpaca":
            _write(records, Path(dst))
            return len(records)
        tmp = Path(dst).with_name(Path(dst).name + ".alpaca.tmp.jsonl")
        _write(records, tmp)
        try:
            return convert(str(tmp), dst, to)
        finally:
            tmp.unlink(missing_ok=True)
    examples = load_examples(src, fmt).examples  # raises DataError listing every problem
    records = [to_alpaca(e) if to == "alpaca" else {**e.to_dict(), **e.meta} for e in examples]
    _write(records, Path(dst))
    return len(records)


def _write(records: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        if path.suffix == ".json":
            json.dump(records, f, ensure_ascii=False, indent=1)
        else:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def split(
    src: str, test_ratio: float = 0.1, seed: int = 0, out_dir: str | None = None
) -> tuple[Path, Path]:
    """Group records by normalised prompt, so duplicates never straddle train and test."""
    if not 0 < test_ratio < 1:
        raise SlmtuneError(f"--test-ratio {test_ratio}: must be between 0 and 1")
    examples = load_examples(src).examples
    raws = [item for _, _, item in read_records(src) if not isinstance(item, Problem)]
    if len(raws) != len(examples):  # load_examples raised already if anything was invalid
        raise DataError([Problem(src, "file", None, "records changed while reading")])
    groups: dict[str, list[dict]] = {}
    for e, raw in zip(examples, raws, strict=True):
        key = "\x1f".join(" ".join(m.content.split()) for m in e.prompt_messages)
        groups.setdefault(hashlib.sha1(key.encode()).hexdigest(), []).append(raw)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_test = min(len(keys) - 1, max(1, round(len(keys) * test_ratio))) if len(keys) > 1 else 0
    test = [r for k in keys[:n_test] for r in groups[k]]
    train = [r for k in keys[n_test:] for r in groups[k]]
    base = Path(out_dir) if out_dir else Path(src).parent
    stem = Path(src).stem
    train_path, test_path = base / f"{stem}.train.jsonl", base / f"{stem}.test.jsonl"
    _write(train, train_path)
    _write(test, test_path)
    return train_path, test_path
