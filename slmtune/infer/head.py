"""The LM head during the decode loop (infer/decode.py): the forward pass stops before it, so
the head is applied afterwards to the rows and tokens the masks leave (the sparse head)."""

from __future__ import annotations

import torch


class HiddenTap(torch.nn.Module):
    """Stands in for the LM head during the loop's forward pass: keeps the hidden states and
    returns a placeholder, so the head is applied afterwards, under the masks (`_choose`).
    With `run_head` the real head runs here (a LoRA-wrapped or hooked head) and its logits
    are kept too."""

    def __init__(self, head: torch.nn.Module):
        super().__init__()
        self.head = head
        self.run_head = False
        self.hidden: torch.Tensor | None = None
        self.logits: torch.Tensor | None = None

    @property
    def weight(self) -> torch.Tensor:
        return self.head.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # contiguous 2-D: a strided input (a prefill's last position) makes F.linear copy
        # the whole weight matrix first
        self.hidden = hidden.reshape(-1, hidden.shape[-1]).contiguous()
        self.logits = self.head(self.hidden) if self.run_head else None
        if self.logits is not None:
            return self.logits.view(*hidden.shape[:-1], -1)
        return hidden.new_zeros(*hidden.shape[:-1], 1)


def hooked(module: torch.nn.Module) -> bool:
    """Someone watches or changes the head's output: it must run as a module."""
    return bool(module._forward_hooks or module._forward_pre_hooks)
