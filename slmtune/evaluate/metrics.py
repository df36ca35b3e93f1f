"""Metrics users can trust for extraction: per field, with nulls handled explicitly.

JSON answers
  - parse rate (a ```json fence is tolerated), record exact match, field accuracy;
  - per field: accuracy, exact match, mean character similarity, precision/recall/F1;
  - null semantics: reference null + prediction null/absent is correct; reference null +
    a value is a false positive; a value + null/absent is a false negative; two values that
    do not match count as both (a wrong value is a wrong extraction and a missed one);
  - values compared after normalisation (NFKC, whitespace collapsed, lowercase), lists of
    strings as sets, long free-text fields (average reference > LONG_FIELD_CHARS chars, e.g.
    `question`, `content`) by character similarity >= LONG_TEXT_THRESHOLD.
Free-text answers: exact match, character-level F1 and ROUGE-L on characters (Chinese has
no spaces, so words are the wrong unit).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from collections.abc import Callable

from slmtune.run.answer import parse_json_answer

LONG_FIELD_CHARS = 30  # a field whose references average more chars than this is "long text"
LONG_TEXT_THRESHOLD = 0.8  # long text is right when char similarity >= this


def normalize(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = unicodedata.normalize("NFKC", str(value))
    return " ".join(text.split()).lower()


def levenshtein(a: str, b: str) -> int:
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_similarity(a, b) -> float:
    """1 - edit distance / longer length, on normalised text; 1.0 for two empty values."""
    a, b = normalize(a), normalize(b)
    if not a and not b:
        return 1.0
    return 1.0 - levenshtein(a, b) / max(len(a), len(b))


def _exact(ref, pred) -> bool:
    return normalize(ref) == normalize(pred)


def _similar(ref, pred) -> bool:
    return char_similarity(ref, pred) >= LONG_TEXT_THRESHOLD


def _as_set(ref, pred) -> bool:
    as_set = lambda v: {normalize(x) for x in v} if isinstance(v, list) else {normalize(v)}  # noqa: E731
    return as_set(ref) == as_set(pred)


SCORERS: dict[str, Callable[[object, object], bool]] = {
    "exact": _exact,
    "similarity": _similar,
    "set": _as_set,
}


def choose_scorers(refs: list[dict], fields: list[str]) -> dict[str, str]:
    chosen = {}
    for field in fields:
        values = [r[field] for r in refs if r.get(field) is not None]
        if any(isinstance(v, list) for v in values):
            chosen[field] = "set"
        elif values and sum(len(str(v)) for v in values) / len(values) > LONG_FIELD_CHARS:
            chosen[field] = "similarity"
        else:
            chosen[field] = "exact"
    return chosen


def _absent(value) -> bool:
    return value is None or value == "" or value == []


def score_json(
    references: list[str], predictions: list[str], field_scorers: dict[str, str] | None = None
) -> dict:
    refs = [parse_json_answer(r)[0] or {} for r in references]
    fields: list[str] = []
    for r in refs:
        fields += [k for k in r if k not in fields]
    scorers = {**choose_scorers(refs, fields), **(field_scorers or {})}
    counts = {f: Counter() for f in fields}
    sims: dict[str, list[float]] = {f: [] for f in fields}
    per_record, n_parsed, n_exact, missing, extra = [], 0, 0, 0, 0
    for ref, text in zip(refs, predictions, strict=True):
        pred, error = parse_json_answer(text)
        n_parsed += pred is not None
        verdicts, all_right = {}, pred is not None
        for f in fields:
            r, p = ref.get(f), (pred or {}).get(f)
            if pred is not None and f not in pred:
                missing += 1
            if pred is None:
                right = False
            elif _absent(r) or _absent(p):
                right = _absent(r) and _absent(p)
            else:
                right = SCORERS[scorers[f]](r, p)
            c = counts[f]
            c["support"] += not _absent(r)
            c["correct"] += right
            c["exact"] += pred is not None and _exact(r, p) and _absent(r) == _absent(p)
            if not _absent(r) and not _absent(p):
                c["tp" if right else "fp"] += 1
                c["fn"] += not right
            elif not _absent(p):
                c["fp"] += 1
            elif not _absent(r):
                c["fn"] += 1
            if scorers[f] == "set":  # list fields: each item is an entity to find
                _count_items(c, r, p)
            similarity = char_similarity(r, p) if pred is not None else 0.0
            sims[f].append(similarity)
            verdicts[f] = {
                "ref": r,
                "pred": p,
                "correct": right,
                "similarity": round(similarity, 4),
            }
            all_right &= right
        extras = [k for k in (pred or {}) if k not in fields]
        extra += len(extras)
        extra_values = [k for k in extras if not _absent(pred[k])]
        all_right &= not extra_values
        n_exact += all_right
        per_record.append(
            {
                "parsed": pred,
                "parse_error": error,
                "record_correct": all_right,
                "correct_fields": sum(v["correct"] for v in verdicts.values()),
                "fields": verdicts,
                "extra_keys": extras,
            }
        )
    n = len(refs)
    per_field = {}
    tp = fp = fn = 0
    for f in fields:
        c = counts[f]
        tp, fp, fn = tp + c["tp"], fp + c["fp"], fn + c["fn"]
        p_, r_, f1 = _prf(c["tp"], c["fp"], c["fn"])
        per_field[f] = {
            "accuracy": _ratio(c["correct"], n),
            "exact_match": _ratio(c["exact"], n),
            "mean_similarity": _ratio(sum(sims[f]), n),
            "precision": p_,
            "recall": r_,
            "f1": f1,
            "tp": c["tp"],
            "fp": c["fp"],
            "fn": c["fn"],
            "support": c["support"],
            "scorer": scorers[f],
        }
        if scorers[f] == "set":
            per_field[f]["item_f1"] = _prf(c["item_tp"], c["item_fp"], c["item_fn"])[2]
    extra_fp = sum(
        len([k for k in rec["extra_keys"] if not _absent((rec["parsed"] or {}).get(k))])
        for rec in per_record
    )
    precision, recall, f1 = _prf(tp, fp + extra_fp, fn)
    items = {}
    lists = [counts[f] for f in fields if scorers[f] == "set"]
    if lists:  # NER-style micro P/R/F1: a (field, item) pair per record is right if in the gold
        tp_, fp_, fn_ = (sum(c[f"item_{k}"] for c in lists) for k in ("tp", "fp", "fn"))
        p_, r_, f1_ = _prf(tp_, fp_, fn_)
        items = {"item_precision": p_, "item_recall": r_, "item_f1": f1_}
    return {
        "task": "json",
        "n": n,
        "parse_rate": _ratio(n_parsed, n),
        "field_accuracy": _ratio(sum(c["correct"] for c in counts.values()), n * len(fields)),
        "record_exact": _ratio(n_exact, n),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        **items,
        "missing_keys": missing,
        "extra_keys": extra,
        "per_field": per_field,
        "per_record": per_record,
    }


def _count_items(counts: Counter, ref, pred) -> None:
    as_set = lambda v: {normalize(x) for x in v} if isinstance(v, list) else set()  # noqa: E731
    r, p = as_set(ref) - {""}, as_set(pred) - {""}
    counts["item_tp"] += len(r & p)
    counts["item_fp"] += len(p - r)
    counts["item_fn"] += len(r - p)


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0 if not fn else 0.0
    recall = tp / (tp + fn) if tp + fn else 1.0 if not fp else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return round(precision, 4), round(recall, 4), round(f1, 4)


# -- free text ----------------------------------------------------------------------------


def _chars(text: str) -> list[str]:
    return [c for c in normalize(text) if not c.isspace()]


def char_f1(ref: str, pred: str) -> float:
    r, p = Counter(_chars(ref)), Counter(_chars(pred))
    if not r and not p:
        return 1.0
    overlap = sum((r & p).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(p.values()), overlap / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def rouge_l(ref: str, pred: str) -> float:
    """ROUGE-L F1 over characters: longest common subsequence."""
    r, p = _chars(ref), _chars(pred)
    if not r and not p:
        return 1.0
    if not r or not p:
        return 0.0
    previous = [0] * (len(p) + 1)
    for a in r:
        current = [0]
        for j, b in enumerate(p, start=1):
            current.append(previous[j - 1] + 1 if a == b else max(previous[j], current[j - 1]))
        previous = current
    lcs = previous[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(p), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def score_text(references: list[str], predictions: list[str]) -> dict:
    rows = [
        {
            "exact": _exact(r, p),
            "char_f1": round(char_f1(r, p), 4),
            "rouge_l": round(rouge_l(r, p), 4),
        }
        for r, p in zip(references, predictions, strict=True)
    ]
    n = len(rows)
    return {
        "task": "text",
        "n": n,
        "exact_match": _ratio(sum(x["exact"] for x in rows), n),
        "char_f1": _ratio(sum(x["char_f1"] for x in rows), n),
        "rouge_l": _ratio(sum(x["rouge_l"] for x in rows), n),
        "per_record": rows,
    }


def detect_task(references: list[str]) -> str:
    parsed = sum(parse_json_answer(r)[0] is not None for r in references)
    return "json" if references and parsed >= 0.9 * len(references) else "text"


def score(references: list[str], predictions: list[str], task: str = "auto") -> dict:
    task = detect_task(references) if task == "auto" else task
    return (
        score_json(references, predictions)
        if task == "json"
        else score_text(references, predictions)
    )
