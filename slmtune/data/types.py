"""The normalised record every input format is turned into."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant")


@dataclass
class Message:
    role: str  # one of ROLES
    content: str


def last_user_text(messages: list[Message]) -> str | None:
    """The content of the last user turn: the input a task's answer is drawn from."""
    users = [m.content for m in messages if m.role == "user"]
    return users[-1] if users else None


@dataclass
class Example:
    """One training / evaluation example as a conversation.

    `source` says where it came from ("data.jsonl:12") so later errors can point back.
    `meta` keeps extra fields of the input record (e.g. an `id`) untouched.
    """

    messages: list[Message]
    source: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def prompt_messages(self) -> list[Message]:
        """Everything before the final assistant answer (what inference sees)."""
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[:-1]
        return list(self.messages)

    @property
    def answer(self) -> str | None:
        """The final assistant answer (the reference), if any."""
        if self.messages and self.messages[-1].role == "assistant":
            return self.messages[-1].content
        return None

    def to_dict(self) -> dict:
        return {"messages": [{"role": m.role, "content": m.content} for m in self.messages]}
