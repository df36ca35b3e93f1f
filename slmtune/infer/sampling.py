"""Choosing a token from logits by temperature / top-p sampling (greedy is an argmax)."""

from __future__ import annotations

import torch

MIN_TEMPERATURE = 1e-4  # below it a row is greedy: logits / ~0 would overflow to inf / NaN


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator) -> int:
    """Temperature / top-p sampling in float64; NaN-safe: with no finite probability mass
    left (NaN logits from the model) it falls back to the best finite logit."""
    probs = torch.softmax(logits.double() / temperature, dim=-1).nan_to_num(0.0)
    if top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(0) - sorted_probs > top_p  # keep the nucleus
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    if not probs.sum() > 0:
        return int(logits.nan_to_num(float("-inf")).argmax())
    return int(torch.multinomial(probs, 1, generator=generator))
