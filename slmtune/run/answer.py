"""Read a model's JSON answer the way a user would: tolerant of fences and stray text."""

from __future__ import annotations

import json
import re

FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)


def parse_json_answer(text: str) -> tuple[dict | None, str | None]:
    """Return (object, None) or (None, reason). Accepts ```json fences and surrounding text."""
    if text is None or not text.strip():
        return None, "empty answer"
    fenced = FENCE.search(text)
    candidate = fenced.group(1) if fenced else text.strip()
    for attempt in (candidate, _first_object(candidate)):
        if attempt is None:
            continue
        try:
            obj = json.loads(attempt, strict=False)  # control characters inside strings
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return obj, None
        return None, f"JSON {type(obj).__name__}, not an object"
    return None, "not valid JSON"


def _first_object(text: str) -> str | None:
    """The first balanced {...} span, honouring strings, or None."""
    start = text.find("{")
    if start < 0:
        return None
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None
