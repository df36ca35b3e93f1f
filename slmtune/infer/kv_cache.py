"""The decode loop's KV cache: layers that grow into spare room, and row/column surgery
(rows leave, rows join left-padded to a common width)."""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer


class GrowingLayer(DynamicLayer):
    """A DynamicLayer that appends into spare room instead of copying the whole cache at
    every step (DynamicLayer's torch.cat was a third of a batch-24 step on CPU). The room
    doubles when full; `keys`/`values` are views of the filled part."""

    SPARE = 64  # columns of room given to a fresh layer

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self.room_k = self.room_v = key_states[..., :0, :]  # no room yet: grown below
            self.filled = 0
        end = self.filled + key_states.shape[-2]
        if end > self.room_k.shape[-2]:
            self._grow(end + max(end, self.SPARE))
        self.room_k[..., self.filled : end, :] = key_states
        self.room_v[..., self.filled : end, :] = value_states
        self.filled = end
        self.keys, self.values = self.room_k[..., :end, :], self.room_v[..., :end, :]
        return self.keys, self.values

    def _grow(self, columns: int) -> None:
        old_k, old_v = self.room_k, self.room_v
        shape = (*old_k.shape[:-2], columns, old_k.shape[-1])
        self.room_k, self.room_v = old_k.new_empty(shape), old_k.new_empty(shape)
        self.room_k[..., : self.filled, :] = old_k[..., : self.filled, :]
        self.room_v[..., : self.filled, :] = old_v[..., : self.filled, :]


class GrowingCache(DynamicCache):
    """A DynamicCache of GrowingLayers: empty, or holding (keys, values) per decoder layer."""

    def __init__(self, tensors=None):
        if tensors is None:
            Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
            return
        layers = []
        for keys, values in tensors:
            layers.append(GrowingLayer())
            layers[-1].update(keys, values)
        Cache.__init__(self, layers=layers)


def select_rows(cache: DynamicCache, rows: list[int], first_column: int = 0) -> DynamicCache:
    if first_column == 0 and rows == list(range(len(rows))) and len(rows) == rows_in(cache):
        return cache
    index = torch.tensor(rows)
    return GrowingCache(
        (k[index.to(k.device), :, first_column:], v[index.to(v.device), :, first_column:])
        for k, v, _ in cache
    )


def rows_in(cache: DynamicCache) -> int:
    return next(iter(cache))[0].shape[0]


def left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad a (batch, heads, columns, dim) cache tensor with zeros to `width` columns."""
    missing = width - t.shape[-2]
    if not missing:
        return t
    return torch.cat([t.new_zeros(*t.shape[:-2], missing, t.shape[-1]), t], dim=-2)


def left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return torch.cat([mask.new_zeros(mask.shape[0], missing), mask], dim=1) if missing else mask
