"""CLUENER2020 (fine-grained Chinese NER on Sina news) as extraction records.

The public files hold one JSON object after another (one per line in train.json, pretty-
printed in dev.json): {"text": ..., "label": {type: {entity: [[start, end], ...]}}} with
inclusive character offsets. Each becomes an alpaca record whose answer is a JSON object
with all ten types as keys, each the list of that type's entity strings in order of
appearance (an entity mentioned twice appears twice), so every value is a piece of the text
and training marks every list verbatim.
"""

from __future__ import annotations

import json
from pathlib import Path

from slmtune.errors import DataError, Problem

TYPES = (
    "address", "book", "company", "game", "government",
    "movie", "name", "organization", "position", "scene",
)  # fmt: skip
# Short on purpose: a fine-tuned extractor learns the task from the answers, and every prompt
# token is paid for in every training step (the ten-key list cost ~40 of ~140 tokens per
# example, over a quarter of the training time); the answers name the ten keys.
SYSTEM = "从文本中抽取命名实体，以json格式输出。"


def cluener_records(path: str | Path) -> list[dict]:
    """Alpaca records {system, instruction, input, output} of a CLUENER file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError([Problem(str(path), "file", None, f"cannot read: {exc}")]) from None
    records, decoder, at = [], json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return records
        line = text.count("\n", 0, at) + 1
        try:
            item, at = decoder.raw_decode(text, at)
            records.append(_record(item))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            problem = Problem(str(path), f"line {line}", None, f"not a CLUENER record: {exc}")
            raise DataError([problem]) from None


def _record(item: dict) -> dict:
    text = item["text"]
    if not isinstance(text, str):
        raise TypeError('"text" is not a string')
    found: dict[str, list[tuple[int, str]]] = {t: [] for t in TYPES}
    for kind, entities in (item.get("label") or {}).items():
        if kind not in found:
            raise ValueError(f'unknown entity type "{kind}"')
        for entity, places in entities.items():
            for start, end in places:
                if text[start : end + 1] != entity:
                    raise ValueError(f'"{entity}" is not at [{start}, {end}]')
                found[kind].append((start, entity))
    answer = {kind: [e for _, e in sorted(found[kind])] for kind in TYPES}
    return {
        "system": SYSTEM,
        "instruction": text,
        "input": "",
        "output": json.dumps(answer, ensure_ascii=False),
    }
