"""The output schema of a JSON task, learned from the training answers.

Training stores it as RUN/schema.json (JSON Schema); predict, eval, extract and serve read it
to constrain decoding, so every answer parses and has exactly the trained keys. A user's
`--schema file.json` overrides it.

Inference rules, from what the answers show:
- the keys of all answers, in first-seen order, all required (a key some answers lack, or
  set to null, becomes nullable: the model answers null rather than dropping it);
- a value's type is the union of the JSON types seen (string, integer, number, boolean,
  array, object); integers seen next to floats become number;
- arrays get an item schema from their elements, nested objects recurse;
- strings and arrays get a generous length bound (4 x the longest seen + a margin), so a
  model that starts looping inside a value is made to close it and the answer still ends
  as valid JSON instead of running to the token limit;
- given the inputs: a string field (or list-of-strings field) whose every value is a
  substring of its record's input is marked `"verbatim": true`, so decoding copies it from
  the input (infer/ground.py); a normalised value (a reformatted date) leaves it unmarked;
- a verbatim field whose every value (at least MIN_SHAPED) is an email address, a URL or a
  phone number, and stands in its input where such a value can (run/answer.py shape_values),
  gets `"shape"`: decoding copies one of those values only, or answers null when the input
  has none.
"""

from __future__ import annotations

import json
from pathlib import Path

from slmtune.data.types import last_user_text
from slmtune.errors import ConfigError
from slmtune.run.answer import (
    SHAPE,
    SHAPES,
    VERBATIM,
    fold,
    parse_json_answer,
    schema_nodes,
    schema_types,
    shape_values,
    values_at,
)
from slmtune.run.layout import RunDir

JSON_SHARE = 0.9  # the same rule as evaluation's task detection
LENGTH_FACTOR, STRING_MARGIN, ITEMS_MARGIN = 4, 32, 8  # bound = factor x longest + margin
MIN_SHAPED = 5  # values it takes to learn a field's shape


def infer_schema(answers: list[str], sources: list[str] | None = None) -> dict | None:
    """JSON Schema of the answers, or None when they are not (≥ 90 %) JSON objects.
    `sources`: each answer's input text, to learn which fields are copied from it."""
    parsed = [parse_json_answer(a)[0] for a in answers]
    objects = [obj for obj in parsed if obj is not None]
    if not answers or len(objects) < JSON_SHARE * len(answers):
        return None
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "answer schema learned from the training data",
        **_object_schema(objects),
    }
    if sources is not None:
        pairs = [(obj, src) for obj, src in zip(parsed, sources, strict=True) if obj is not None]
        _mark_verbatim(schema, pairs)
    return schema


def examples_schema(examples: list) -> dict | None:
    """infer_schema of training examples: each one's answer, learned against its last user
    turn (the input its copied values come from)."""
    answers = [e.answer or "" for e in examples]
    return infer_schema(answers, [last_user_text(e.prompt_messages) or "" for e in examples])


def _mark_verbatim(schema: dict, pairs: list[tuple[dict, str]]) -> None:
    """Mark the string schemas whose every value occurs in its input (and give a shape)."""
    for path, node in schema_nodes(schema):
        if "string" not in schema_types(node):
            continue
        strings = [
            (v, src) for obj, src in pairs for v in values_at(obj, path) if isinstance(v, str)
        ]
        if strings and all(v in src for v, src in strings):
            node[VERBATIM] = True
            if shape := _shape(strings):
                node[SHAPE] = shape


def _shape(strings: list[tuple[str, str]]) -> str | None:
    """The SHAPES name every copied value has, and inside a span of that shape in its input."""
    if len(strings) < MIN_SHAPED:
        return None
    for name, pattern in SHAPES.items():
        if all(pattern.fullmatch(fold(v)) for v, _ in strings) and all(
            _a_value(v, src, shape_values(src, name)) for v, src in strings
        ):
            return name
    return None


def _a_value(value: str, source: str, values: dict) -> bool:
    """Whether `value` stands in `source` where shape_values finds a value of its shape."""
    found = {pair for pairs in values.values() for pair in pairs}
    at = source.find(value)
    while at >= 0:
        if (at, at + len(value)) in found:
            return True
        at = source.find(value, at + 1)
    return False


def _object_schema(objects: list[dict]) -> dict:
    keys: list[str] = []
    for obj in objects:
        keys.extend(k for k in obj if k not in keys)
    properties = {}
    for key in keys:
        values = [obj.get(key) for obj in objects]
        properties[key] = _value_schema(values)
    return {
        "type": "object",
        "properties": properties,
        "required": keys,
        "additionalProperties": False,
    }


def _value_schema(values: list) -> dict:
    types = []
    for v in values:
        t = _json_type(v)
        if t not in types:
            types.append(t)
    if "integer" in types and "number" in types:
        types.remove("integer")
    present = [v for v in values if v is not None]
    schema: dict = {"type": types[0] if len(types) == 1 else types}
    strings = [v for v in present if isinstance(v, str)]
    if strings:
        schema["maxLength"] = LENGTH_FACTOR * max(len(v) for v in strings) + STRING_MARGIN
    if "array" in types:
        lists = [v for v in present if isinstance(v, list)]
        items = [x for v in lists for x in v]
        schema["items"] = _value_schema(items) if items else {}
        schema["maxItems"] = LENGTH_FACTOR * max(len(v) for v in lists) + ITEMS_MARGIN
    if "object" in types:
        nested = _object_schema([v for v in present if isinstance(v, dict)])
        schema.update({k: v for k, v in nested.items() if k != "type"})
    return schema


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


# Worst-case tokens of one JSON string character: a token is at least one byte, a character
# at most 4 UTF-8 bytes, or 6 as a \uXXXX escape.
TOKENS_PER_CHAR = 6
SCALAR_TOKENS = 32  # a number, true/false/null, with room to spare


def answer_token_bound(schema: dict | None, source_bytes: int) -> int | None:
    """The most tokens an answer valid under `schema` can take (None: unbounded, e.g. a
    string without maxLength). A verbatim string is a piece of the input: at most
    `source_bytes` (the input's JSON-escaped UTF-8 length) tokens. Generous on purpose: a
    limit from it never cuts a valid answer."""
    if not isinstance(schema, dict):
        return None

    def bound(node: dict) -> int | None:
        sizes = [_type_bound(node, t, bound, source_bytes) for t in schema_types(node) or ["?"]]
        return None if None in sizes else max(sizes) + 2

    return bound(schema)


def _type_bound(node: dict, kind: str, bound, source_bytes: int) -> int | None:
    if kind == "object":
        props = node.get("properties") or {}
        if node.get("additionalProperties", True) is not False:
            return None
        parts = [bound(sub) for sub in props.values()]
        if None in parts:
            return None
        keys = sum(len(k.encode()) * TOKENS_PER_CHAR // 4 + 4 for k in props)
        return keys + sum(parts)
    if kind == "array":
        item = bound(node.get("items") or {})
        most = node.get("maxItems")
        return None if item is None or most is None else most * (item + 2)
    if kind == "string":
        if node.get(VERBATIM) is True:
            return source_bytes
        most = node.get("maxLength")
        return None if most is None else most * TOKENS_PER_CHAR
    if kind in ("integer", "number", "boolean", "null"):
        return SCALAR_TOKENS
    return None


def save_schema(run_dir: Path, schema: dict | None) -> None:
    if schema is not None:
        text = json.dumps(schema, indent=2, ensure_ascii=False)
        RunDir(run_dir).schema.write_text(text + "\n", encoding="utf-8")


def load_schema(path: str | Path) -> dict:
    """Read a JSON Schema file (a user's --schema), with a clear error when it is not one."""
    path = Path(path)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--schema {path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--schema {path}: not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"--schema {path}: a JSON Schema must be a JSON object")
    return schema


def run_schema(run_dir: str | Path) -> dict | None:
    """The schema a run learned in training, or None (free-text task / not a run)."""
    path = RunDir(run_dir).schema
    return load_schema(path) if path.is_file() else None


def decoding_schema(opened, schema_file: str | None, constrain: bool) -> dict | None:
    """The schema to constrain decoding with: --schema, else the run's; None if off."""
    if not constrain:
        return None
    if not schema_file:
        return opened.schema
    files = opened.cache.setdefault("schema_files", {})  # read once, not per batch or turn
    if schema_file not in files:
        files[schema_file] = load_schema(schema_file)
    return files[schema_file]
