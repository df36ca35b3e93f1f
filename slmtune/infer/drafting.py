"""Drafting for the decode loop (infer/decode.py): tokens greedy decoding will likely choose
next, fed as extra positions of one forward pass and kept only as far as the real choice
agrees (DecodeLoop._verify), so answers are the ones plain decoding gives.

Two sources: the tokens the grammar forces (the next key, its quotes and colon: xgrammar's
jump-forward), else prompt lookup: extraction copies from the input, so what followed the
answer's last tokens in the prompt is likely what comes next.
"""

from __future__ import annotations

DRAFT_MAX = 4  # drafted tokens per row and step (bench/multi_token_step.py: what q cost)
LOOKUP = (3, 2, 1)  # answer endings looked up in the prompt, longest first


class PromptLookup:
    """Where each 1-3 token sequence first occurs in a prompt, built on first use."""

    def __init__(self, prompt: list[int]):
        self.prompt = prompt
        self.index: dict[tuple[int, ...], int] | None = None

    def after(self, tokens: list[int]) -> list[int]:
        """The prompt tokens that followed the answer's last LOOKUP tokens where they first
        occur in the prompt, longest match first."""
        if self.index is None:
            self.index = {}
            for n in LOOKUP:
                for i in range(len(self.prompt) - n):
                    self.index.setdefault(tuple(self.prompt[i : i + n]), i + n)
        for n in LOOKUP:
            at = self.index.get(tuple(tokens[-n:])) if len(tokens) >= n else None
            if at is not None:
                return self.prompt[at : at + DRAFT_MAX]
        return []


def draft(row) -> list[int]:
    """A row's draft for the next pass: what its grammar forces, else what prompt lookup
    suggests; none for a sampled or finished row or one at its token limit."""
    room = min(DRAFT_MAX, row.max_new_tokens - len(row.tokens) - 1)
    if room <= 0 or row.sampled or row.finish is not None:
        return []
    try:
        forced = row.matcher.find_jump_forward_tokens() if row.matcher else []
    except Exception:  # noqa: BLE001  (no draft; the row's own step reports errors)
        forced = []
    return (forced or row.lookup.after(row.tokens))[:room]
