"""Record formats: a registry of parsers turning one raw dict into a conversation.

Each parser returns (messages, problems). Built-ins register the same way a user's would.
"""

from __future__ import annotations

from collections.abc import Callable

from slmtune.data.types import Message

Parsed = tuple[list[Message], list[tuple[str | None, str]]]  # (messages, [(key, message)])
FORMATS: dict[str, Callable[[dict], Parsed]] = {}

ROLE_ALIASES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
    "developer": "system",
}


def register(name: str):
    def deco(fn):
        FORMATS[name] = fn
        return fn

    return deco


def detect_format(record: dict) -> str | None:
    if "messages" in record:
        return "messages"
    if "conversations" in record or "conversation" in record:
        return "sharegpt"
    if "instruction" in record or "output" in record:
        return "alpaca"
    return None


def _text(value, key: str, problems: list) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts
        parts = [
            p.get("text", "") for p in value if isinstance(p, dict) and p.get("type") == "text"
        ]
        if len(parts) == len(value):
            return "".join(parts)
    if value is None:
        return ""
    problems.append((key, f"expected text, got {type(value).__name__}"))
    return ""


@register("alpaca")
def parse_alpaca(record: dict) -> Parsed:
    problems: list = []
    messages: list[Message] = []
    system = _text(record.get("system"), "system", problems)
    if system.strip():
        messages.append(Message("system", system))
    history = record.get("history") or []
    if not isinstance(history, list):
        problems.append(("history", "expected a list of [query, answer] pairs"))
        history = []
    for i, pair in enumerate(history):
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            problems.append((f"history[{i}]", "expected a [query, answer] pair"))
            continue
        messages.append(Message("user", _text(pair[0], f"history[{i}][0]", problems)))
        messages.append(Message("assistant", _text(pair[1], f"history[{i}][1]", problems)))
    instruction = _text(record.get("instruction"), "instruction", problems)
    extra = _text(record.get("input"), "input", problems)
    user = "\n".join(part for part in (instruction, extra) if part.strip())
    if not user:
        problems.append(("instruction", "missing or empty (and no input)"))
    messages.append(Message("user", user))
    if "output" in record:
        messages.append(Message("assistant", _text(record.get("output"), "output", problems)))
    return messages, problems


def _turns(
    record: dict, key: str, role_keys: tuple[str, ...], content_keys: tuple[str, ...]
) -> Parsed:
    problems: list = []
    messages: list[Message] = []
    turns = record.get(key)
    if not isinstance(turns, list) or not turns:
        return [], [(key, "expected a non-empty list of turns")]
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            problems.append((f"{key}[{i}]", "expected an object with a role and content"))
            continue
        role_key = next((k for k in role_keys if k in turn), None)
        content_key = next((k for k in content_keys if k in turn), None)
        if role_key is None or content_key is None:
            problems.append(
                (
                    f"{key}[{i}]",
                    f"needs one of {'/'.join(role_keys)} and one of {'/'.join(content_keys)}",
                )
            )
            continue
        raw_role = str(turn[role_key]).lower()
        role = ROLE_ALIASES.get(raw_role)
        if role is None:
            problems.append(
                (
                    f"{key}[{i}].{role_key}",
                    f"unknown role '{turn[role_key]}' (use one of {', '.join(ROLE_ALIASES)})",
                )
            )
            continue
        messages.append(
            Message(role, _text(turn[content_key], f"{key}[{i}].{content_key}", problems))
        )
    return messages, problems


@register("sharegpt")
def parse_sharegpt(record: dict) -> Parsed:
    key = "conversations" if "conversations" in record else "conversation"
    messages, problems = _turns(record, key, ("from", "role"), ("value", "content", "message"))
    system = record.get("system")
    if isinstance(system, str) and system.strip() and not any(m.role == "system" for m in messages):
        messages.insert(0, Message("system", system))
    return messages, problems


@register("messages")
def parse_messages(record: dict) -> Parsed:
    return _turns(record, "messages", ("role",), ("content",))


def validate(messages: list[Message], require_answer: bool) -> list[tuple[str | None, str]]:
    """Checks shared by all formats: system first and once, no empty user turn, an answer."""
    problems: list = []
    for i, m in enumerate(messages):
        if m.role == "system" and i != 0:
            problems.append((None, f"system message at turn {i}: only one, and first"))
        if m.role == "user" and not m.content.strip():
            problems.append((None, f"empty user message at turn {i}"))
    if not any(m.role == "user" for m in messages):
        problems.append((None, "no user message"))
    if require_answer:
        if not messages or messages[-1].role != "assistant":
            problems.append(
                ("output", "missing answer: the record must end with an assistant turn")
            )
        elif not messages[-1].content.strip():
            problems.append(("output", "empty answer"))
    return problems
