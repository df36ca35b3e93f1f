"""Turn rendered examples into batches: padding-free packing (default) or padded rows.

Both carry `shift_labels`: the label of the *next* token at each position (-100 where
nothing is trained, and at the last token of every example so no example predicts the
start of the next one). The loss reads only those positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from slmtune.chat.render import IGNORE, Rendered


def shifted(labels: list[int]) -> list[int]:
    return labels[1:] + [IGNORE]


@dataclass
class Collator:
    pad_id: int
    packing: bool = True

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        return self.pack(features) if self.packing else self.pad(features)

    def pack(self, features: list[dict]) -> dict[str, torch.Tensor]:
        # One row, no padding. position_ids restart at 0 for every example and no
        # attention_mask is passed: transformers then builds a block-diagonal causal mask
        # from the position_ids (masking_utils.find_packed_sequence_indices), so examples
        # never attend to each other.
        ids, pos, shift = [], [], []
        for f in features:
            ids += f["input_ids"]
            pos += list(range(len(f["input_ids"])))
            shift += shifted(f["labels"])
        row = torch.tensor([ids])
        return {
            "input_ids": row,
            "position_ids": torch.tensor([pos]),
            "shift_labels": torch.tensor([shift]),
            "labels": torch.tensor([shift]),  # Trainer looks for `labels` to count tokens
        }

    def pad(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids, mask, shift = [], [], []
        for f in features:
            n = len(f["input_ids"])
            ids.append(f["input_ids"] + [self.pad_id] * (width - n))
            mask.append([1] * n + [0] * (width - n))
            shift.append(shifted(f["labels"]) + [IGNORE] * (width - n))
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "shift_labels": torch.tensor(shift),
            "labels": torch.tensor(shift),
        }


class RenderedDataset(torch.utils.data.Dataset):
    def __init__(self, rows: list[Rendered]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.rows[i].input_ids, "labels": self.rows[i].labels}
