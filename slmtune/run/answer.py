"""A model's JSON answer: read it the way a user would (tolerant of fences and stray text),
and say where its verbatim values came from in the input.

A verbatim field is a string (or the strings of a list) that the schema marks
`"verbatim": true`: its value is copied from the input (infer/ground.py enforces it while
decoding). `spans` gives each such value's character offsets [start, end) in the input;
list items are searched in order of appearance, each from the start of the one before, so
repeated entities get their own places."""

from __future__ import annotations

import json
import re

# -- reading it ----------------------------------------------------------------------------

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


# -- which fields are verbatim ------------------------------------------------------------

VERBATIM = "verbatim"  # the JSON Schema keyword we add (xgrammar ignores it)
SHAPE = "shape"  # ours too: a verbatim value is copied from a span of this shape
ITEM = "[]"  # path step for "an item of this list"
# Shapes a copied value can have, matched on text whose full-width ASCII is folded to
# half-width (fold): a field whose training values all have one is copied from the input's
# values of that shape only (shape_values, infer/ground.py), so a phone number or a code
# never fills an email field, and a text without an email gives null.
SHAPES = {
    "email": re.compile(
        r"[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
    ),
    "url": re.compile(r"https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%\-\[\]]+"),
    "phone": re.compile(r"\+?\d[\d\- ]{5,17}\d"),
}


def schema_nodes(schema: dict | None, path: tuple = ()):
    """Every (path, sub-schema) of `schema`, depth first in the schema's order: object
    properties by key, list items as ITEM."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from schema_nodes(sub, (*path, key))
    if isinstance(schema.get("items"), dict):
        yield from schema_nodes(schema["items"], (*path, ITEM))


def verbatim_paths(schema: dict | None) -> tuple[tuple[str, ...], ...]:
    """Paths (keys, with ITEM for list items) of the string values marked verbatim, in the
    schema's order."""
    return tuple(
        path
        for path, node in schema_nodes(schema)
        if node.get(VERBATIM) is True and "string" in schema_types(node)
    )


def verbatim_bounds(schema: dict | None) -> dict[tuple[str, ...], int]:
    """path -> maxLength of the verbatim values the grammar leaves unbounded (grammar_schema):
    the grounding (infer/ground.py) holds them to it."""
    return {
        path: node["maxLength"]
        for path, node in schema_nodes(schema)
        if _bounded_by_grounding(node)
    }


def verbatim_shapes(schema: dict | None) -> dict[tuple[str, ...], tuple[str, bool]]:
    """path -> (shape, nullable) of the verbatim values the schema gives a shape."""
    return {
        path: (node[SHAPE], "null" in schema_types(node))
        for path, node in schema_nodes(schema)
        if node.get(VERBATIM) is True and node.get(SHAPE) in SHAPES
    }


def fold(text: str) -> str:
    """Full-width ASCII (！ to ～) and the ideographic space as half-width, one character for
    one, so offsets in the folded text are offsets in `text`."""
    return "".join(
        chr(ord(c) - 0xFEE0) if 0xFF01 <= ord(c) <= 0xFF5E else " " if c == "\u3000" else c
        for c in text
    )


def shape_spans(source: str, shape: str) -> list[tuple[int, int]]:
    """[start, end) of the pieces of `source` that have `shape` (SHAPES)."""
    return [m.span() for m in SHAPES[shape].finditer(fold(source))]


def shape_values(source: str, shape: str) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Each span of `shape` in `source` -> the [start, end) of the values of that shape inside
    it, from a word's edge to a word's edge (the span's ends, or a separator such as - or .
    inside it): "abc@qq.com" of "E-mail-abc@qq.com" is one, "port@x.cn" of "support@x.cn" not."""
    folded, pattern = fold(source), SHAPES[shape]

    def edge(k: int, a: int, b: int) -> bool:
        return k in (a, b) or not (folded[k - 1].isalnum() and folded[k].isalnum())

    return {
        (a, b): [
            (i, j)
            for i in range(a, b)
            if edge(i, a, b)
            for j in range(i + 1, b + 1)
            if edge(j, a, b) and pattern.fullmatch(folded, i, j)
        ]
        for a, b in shape_spans(source, shape)
    }


def grammar_schema(schema: dict) -> dict:
    """`schema` as the JSON grammar sees it: no verbatim marks, and no maxLength on verbatim
    values: xgrammar's bounded strings take no escapes (a copied value with a line break or a
    quote would be cut), so the grounding, which counts escapes right, holds them to it."""
    if isinstance(schema, list):
        return [grammar_schema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    drop = {VERBATIM, SHAPE, "maxLength"} if _bounded_by_grounding(schema) else {VERBATIM, SHAPE}
    return {k: grammar_schema(v) for k, v in schema.items() if k not in drop}


def _bounded_by_grounding(node: dict) -> bool:
    """A verbatim string with maxLength (and no minLength, which only the grammar can hold)."""
    return (
        node.get(VERBATIM) is True
        and "string" in schema_types(node)
        and isinstance(node.get("maxLength"), int)
        and "minLength" not in node
    )


def without_verbatim(schema: dict) -> dict:
    """A copy of `schema` with every verbatim mark (and shape) removed (the JSON grammar
    alone)."""
    if isinstance(schema, dict):
        return {k: without_verbatim(v) for k, v in schema.items() if k not in (VERBATIM, SHAPE)}
    if isinstance(schema, list):
        return [without_verbatim(v) for v in schema]
    return schema


def schema_types(node: dict) -> list:
    t = node.get("type", [])
    return t if isinstance(t, list) else [t]


def values_at(obj, path: tuple[str, ...]) -> list:
    """Every value at `path` in a parsed answer (list items expanded), in answer order."""
    values = [obj]
    for step in path:
        nxt = []
        for v in values:
            if step == ITEM and isinstance(v, list):
                nxt.extend(v)
            elif step != ITEM and isinstance(v, dict) and step in v:
                nxt.append(v[step])
        values = nxt
    return values


def field_name(path: tuple[str, ...]) -> str:
    return ".".join(p for p in path if p != ITEM)


# -- where the values came from ------------------------------------------------------------


def spans(answer: dict | None, source: str, paths) -> dict:
    """field -> [start, end) in `source` (a list of them for a list field; None for a null
    or a value that is not in the source). Items are searched in order of appearance: each
    from the start of the one before, so repeated entities get their own places."""
    out: dict = {}
    if not isinstance(answer, dict):
        return out
    for path in paths:
        values = values_at(answer, path)
        if ITEM in path:
            found, start, used = [], 0, set()
            for v in values:
                span = _find(source, v, start, used)
                found.append(span)
                if span:
                    start, used = span[0], used | {tuple(span)}
            out[field_name(path)] = found
        elif values:
            out[field_name(path)] = _find(source, values[0], 0, set())
    return out


def _find(source: str, value, start: int, used: set) -> list[int] | None:
    """The first place of `value` from `start` that no earlier item took, else from the
    beginning; None when it is not in the source (or not a non-empty string)."""
    if not isinstance(value, str) or not value:
        return None
    for begin in (start, 0):
        at = source.find(value, begin)
        while at >= 0 and (at, at + len(value)) in used:
            at = source.find(value, at + 1)
        if at >= 0:
            return [at, at + len(value)]
    at = source.find(value)
    return None if at < 0 else [at, at + len(value)]


def ungrounded(answer: dict | None, source: str, paths) -> list[str]:
    """The verbatim fields whose value is not a substring of `source` (should be none)."""
    if not isinstance(answer, dict):
        return []
    bad = []
    for path in paths:
        for v in values_at(answer, path):
            if isinstance(v, str) and v not in source:
                bad.append(field_name(path))
                break
    return bad
