"""bf16 matmuls on CPUs that have them (AVX512-BF16 / AMX), for the decode loop.

On such a CPU with fp32 weights, the loop multiplies by bf16 copies of the weights
(activations, norms and the KV cache stay fp32): 2.1x the fp32 records/s on the demo
extraction here. The LM head's bf16 logits pick each greedy row's top candidates, which are
re-scored with the fp32 weights, so the head never changes a greedy choice; the layers' bf16
products can (rarely). SLMTUNE_BF16_MATMUL=0 turns it all off, =head keeps only the exact
head, =1 forces both, for comparison.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref

import torch
import torch.nn.functional as F

from slmtune.errors import ConfigError
from slmtune.models import cpu_has_bf16

CANDIDATES = 8  # greedy rows: top bf16 logits re-scored in fp32


class Bf16Head:
    """All logits from a bf16 copy of the LM head; `greedy` re-scores the best in fp32."""

    def __init__(self, exact: torch.nn.Linear):
        self.exact = exact  # the model's own fp32 head (tied to the embeddings: no copy)
        self.weight16 = exact.weight.detach().to(torch.bfloat16)
        self.bias = exact.bias

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = F.linear(hidden.to(torch.bfloat16), self.weight16).float()
        return logits if self.bias is None else logits + self.bias

    def greedy(self, logits: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """argmax of the fp32 logits, found among the top bf16 `logits` (grammar-masked)."""
        top, candidates = logits.topk(CANDIDATES, dim=-1)
        exact = torch.einsum("rd,rkd->rk", hidden.float(), self.exact.weight[candidates])
        if self.bias is not None:
            exact = exact + self.bias[candidates]
        exact[top == float("-inf")] = float("-inf")  # masked by the grammar stays masked
        return candidates.gather(1, exact.argmax(-1, keepdim=True)).squeeze(1)


class Bf16Matmuls:
    """bf16 copies of a model's linear weights, used in place of the fp32 ones during one
    forward pass (`installed`); outside it the model is untouched."""

    def __init__(self, model, layers: bool):
        self.head = Bf16Head(model.get_output_embeddings())
        self.linears = []  # (module, bf16 weight): every nn.Linear but the head and LoRA's
        if layers:
            for name, module in model.named_modules():
                if (
                    isinstance(module, torch.nn.Linear)
                    and module is not self.head.exact
                    and "lora_" not in name  # LoRA's small A/B matrices stay fp32
                    and "forward" not in vars(module)  # someone else's hook: leave it
                ):
                    self.linears.append((module, module.weight.detach().to(torch.bfloat16)))

    @contextlib.contextmanager
    def installed(self, model):
        for module, weight16 in self.linears:
            module.forward = functools.partial(_bf16_linear, weight16, module.bias)
        try:
            yield
        finally:
            for module, _ in self.linears:
                del module.forward


def _bf16_linear(weight16: torch.Tensor, bias, x: torch.Tensor) -> torch.Tensor:
    y = F.linear(x.to(torch.bfloat16), weight16).to(x.dtype)
    return y if bias is None else y + bias


_BF16: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bf16_matmuls(model) -> Bf16Matmuls | None:
    """bf16 matmuls for `model` where they pay: fp32 weights on a CPU with AVX512-BF16/AMX.
    SLMTUNE_BF16_MATMUL: 0 = off, head = the exact head only, 1 = head and layers.
    Made once per model (the copies cost half the fp32 weights' memory)."""
    head = model.get_output_embeddings()
    wanted = os.environ.get("SLMTUNE_BF16_MATMUL")
    if wanted is None:
        on_cpu = head.weight.device.type == "cpu" and head.weight.dtype == torch.float32
        wanted = "1" if on_cpu and cpu_has_bf16() else "0"
    if wanted not in ("0", "head", "1"):
        raise ConfigError(f"SLMTUNE_BF16_MATMUL={wanted}: use 0, head or 1")
    if wanted == "0" or not isinstance(head, torch.nn.Linear):
        return None
    made = _BF16.setdefault(model, {})  # layers on/off -> Bf16Matmuls
    layers = wanted == "1"
    if layers not in made:
        made[layers] = Bf16Matmuls(model, layers)
    return made[layers]
