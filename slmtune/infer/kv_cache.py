"""The decode loop's KV cache: layers that grow into spare room, row/column surgery (rows
leave, rows join left-padded to a common width), and the stored KV of prompt starts."""

from __future__ import annotations

from dataclasses import dataclass

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

    @classmethod
    def of(cls, room_k: torch.Tensor, room_v: torch.Tensor, filled: int) -> GrowingLayer:
        """A layer over rooms whose first `filled` columns hold the keys and values."""
        layer = cls()
        layer.lazy_initialization(room_k, room_v)
        layer.room_k, layer.room_v, layer.filled = room_k, room_v, filled
        layer.keys, layer.values = room_k[..., :filled, :], room_v[..., :filled, :]
        return layer

    def _grow(self, columns: int) -> None:
        old_k, old_v = self.room_k, self.room_v
        shape = (*old_k.shape[:-2], columns, old_k.shape[-1])
        self.room_k, self.room_v = old_k.new_empty(shape), old_k.new_empty(shape)
        self.room_k[..., : self.filled, :] = old_k[..., : self.filled, :]
        self.room_v[..., : self.filled, :] = old_v[..., : self.filled, :]


class GrowingCache(DynamicCache):
    """A DynamicCache of GrowingLayers: empty, or holding (keys, values) per decoder layer."""

    def __init__(self, tensors=None, layers: list[GrowingLayer] | None = None):
        if layers is not None:
            Cache.__init__(self, layers=layers)
            return
        if tensors is None:
            Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
            return
        layers = []
        for keys, values in tensors:
            layers.append(GrowingLayer())
            layers[-1].update(keys, values)
        Cache.__init__(self, layers=layers)


def assemble(parts: list[tuple[DynamicCache, list[int], int]], width: int) -> GrowingCache:
    """One cache of rows taken from several: for each (cache, rows, first_column), those rows
    from that column on, right-aligned to `width` columns (zeros on the left: masked padding
    must be finite, or attention turns it into NaN). Each layer is written once, straight
    into its room: rows join and leave the loop at nearly every step, and building this with
    index / pad / cat copied the whole cache three times (~18 % of a serving step)."""
    sources = [list(cache) for cache, _, _ in parts]
    total = sum(len(rows) for _, rows, _ in parts)
    spare = max(GrowingLayer.SPARE, width // 2)
    layers = []
    for layer in range(len(sources[0])):
        k0 = sources[0][layer][0]
        shape = (total, k0.shape[1], width + spare, k0.shape[-1])
        rooms = (k0.new_empty(shape), k0.new_empty(shape))
        at = 0
        for (_, rows, first), source in zip(parts, sources, strict=True):
            for room, tensor in zip(rooms, source[layer][:2], strict=True):
                pad = width - (tensor.shape[-2] - first)
                room[at : at + len(rows), :, :pad].zero_()
                for start, end, to in _runs(rows):
                    room[at + to : at + to + end - start, :, pad:width] = tensor[
                        start:end, :, first:
                    ]
            at += len(rows)
        layers.append(GrowingLayer.of(*rooms, width))
    return GrowingCache(layers=layers)


def _runs(rows: list[int]):
    """(start, end, position) for each run of consecutive row numbers in `rows`."""
    position = 0
    while position < len(rows):
        end = position + 1
        while end < len(rows) and rows[end] == rows[end - 1] + 1:
            end += 1
        yield rows[position], rows[end - 1] + 1, position
        position = end


def select_rows(cache: DynamicCache, rows: list[int], first_column: int = 0) -> DynamicCache:
    if first_column == 0 and rows == list(range(len(rows))) and len(rows) == rows_in(cache):
        return cache
    return assemble([(cache, rows, first_column)], cache.get_seq_length() - first_column)


def rows_in(cache: DynamicCache) -> int:
    return next(iter(cache))[0].shape[0]


def left_pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return torch.cat([mask.new_zeros(mask.shape[0], missing), mask], dim=1) if missing else mask


def holes_to_left(cache: DynamicCache, mask: torch.Tensor) -> tuple[DynamicCache, torch.Tensor]:
    """Move each row's padding columns (mask 0) to its left, its tokens kept in order: a row
    prefilled after a stored prefix has padding between the prefix and the rest, and the
    loop's rows are left-padded and contiguous."""
    order = torch.sort(mask, dim=1, stable=True).indices  # pads first, then the tokens
    moved = GrowingCache(
        (k.gather(2, _expand(order, k)), v.gather(2, _expand(order, v))) for k, v, _ in cache
    )
    return moved, mask.gather(1, order)


def _expand(order: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return order.to(t.device)[:, None, :, None].expand_as(t)


PREFIX_MIN = 8  # a shorter common start is prefilled with the rest
PREFIX_MAX = 512  # columns kept of a stored prompt
PREFIXES = 4  # prompts kept per adapter (several tasks served at once)


@dataclass
class _Stored:
    ids: list[int]
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (1, heads, len(ids), dim)


class PrefixStore:
    """The KV of recently prefilled prompts, so that a prompt starting the same way (every
    request of a task begins with the same template and system prompt) prefills only the
    rest. Keys in a decoder's cache hold their own position (RoPE is applied before caching)
    and a causal model's KV of a start does not depend on what follows it, so a stored
    start is the one the prompt would have computed itself (up to float rounding). Kept per
    adapter: a LoRA adapter changes every KV."""

    def __init__(self):
        self.stored: dict[object, list[_Stored]] = {}

    def lookup(self, key, prompts: list[list[int]]) -> tuple[_Stored | None, int]:
        """The stored prompt that starts most like all of `prompts`, and how many tokens they
        share with it (0: none worth it)."""
        best, shared = None, 0
        for stored in self.stored.get(key, []):
            common = min(_common_start(stored.ids, p) for p in prompts)
            if common > shared:
                best, shared = stored, common
        if shared < PREFIX_MIN:
            return None, 0
        kept = self.stored[key]
        kept.insert(0, kept.pop(kept.index(best)))  # the most recently used first
        return best, shared

    def cache(self, stored: _Stored, columns: int, rows: int) -> GrowingCache:
        """A cache holding the first `columns` tokens of `stored` for each of `rows` rows."""
        return GrowingCache(
            (k[:, :, :columns].expand(rows, -1, -1, -1), v[:, :, :columns].expand(rows, -1, -1, -1))
            for k, v in stored.layers
        )

    def remember(self, key, prompt: list[int], cache: DynamicCache, row: int) -> None:
        """Keep `prompt`'s KV (the last len(prompt) columns of `row` in a prefilled cache),
        unless a kept prompt already starts like it."""
        if self.lookup(key, [prompt])[0] is not None:
            return
        n = min(len(prompt), PREFIX_MAX)
        start = cache.get_seq_length() - len(prompt)
        layers = [
            (
                k[row : row + 1, :, start : start + n].clone(),
                v[row : row + 1, :, start : start + n].clone(),
            )
            for k, v, _ in cache
        ]
        kept = self.stored.setdefault(key, [])
        kept.insert(0, _Stored(prompt[:n], layers))
        del kept[PREFIXES:]


def _common_start(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
