"""`slmtune data show`: see, token by token, what the model is trained to write."""

from __future__ import annotations

from rich.text import Text

from slmtune.chat.render import IGNORE, ChatRenderer
from slmtune.data.types import Message


def show_masks(renderer: ChatRenderer, messages: list[Message]) -> Text:
    """Rendered conversation: trained tokens bold green on dark, masked tokens dim."""
    rendered = renderer.render(messages)
    text = Text()
    for token_id, label in zip(rendered.input_ids, rendered.labels, strict=True):
        piece = renderer.tokenizer.decode([token_id])
        text.append(piece, style="bold green on grey15" if label != IGNORE else "dim")
    text.append(
        f"\n[{len(rendered.input_ids)} tokens, {rendered.n_trained} trained"
        + (", prompt shortened to fit --max-length" if rendered.truncated else "")
        + "]",
        style="italic",
    )
    return text
