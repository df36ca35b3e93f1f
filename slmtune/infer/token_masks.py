"""Reading xgrammar token bitmasks (int32 words, bit i of word w allows token 32*w + i)
without unpacking the whole vocabulary: a row's allowed ids, a membership test, a count."""

from __future__ import annotations

import torch

_SHIFTS = torch.arange(32, dtype=torch.int32)


def set_bits(words: torch.Tensor, vocab: int) -> torch.Tensor:
    """The allowed token ids of a bitmask row, ascending; only the non-zero words are read."""
    nonzero = (words != 0).nonzero().squeeze(1)
    bits = ((words[nonzero].unsqueeze(-1) >> _SHIFTS) & 1).bool()
    ids = (nonzero.unsqueeze(-1) * 32 + _SHIFTS.long())[bits]
    return ids[ids < vocab]


def allowed_bits(words: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Which of `ids` the bitmask row allows."""
    return ((words[ids >> 5] >> (ids & 31).to(torch.int32)) & 1).bool()


def popcount(words: torch.Tensor, vocab: int) -> int:
    """Allowed tokens below `vocab` in a bitmask row (SWAR bit count, in int64 so no sign
    trouble; the last word's bits past the vocabulary are not counted)."""
    whole, rest = divmod(vocab, 32)
    x = words[:whole].to(torch.int64) & 0xFFFFFFFF
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F
    count = int((((x * 0x01010101) & 0xFFFFFFFF) >> 24).sum())
    if rest:
        count += int(((words[whole] >> _SHIFTS[:rest]) & 1).sum())
    return count
