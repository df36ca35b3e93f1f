"""Continuous batching: one decode loop that requests join and leave between steps.

`model.generate()` decodes a fixed batch until its longest answer ends, so one answer that
runs to its token limit keeps every finished row waiting. Here each step is one forward pass
over the rows in flight: a row that ends leaves at once, and new rows are prefilled and join
before the next step, so the batch stays full while work is waiting.

Rows share one KV cache (a transformers DynamicCache whose layers grow into spare room
instead of concatenating every step), left-padded to a common width: the attention mask
hides the padding, position ids count each row's own tokens, and columns no row uses any
more are cut off when rows leave. Every row has its own token limit, stop tokens, grammar
(xgrammar token masks), temperature/top-p and seed, and on a multi-adapter PEFT model its
own LoRA adapter (PEFT's mixed-batch `adapter_names`, "__base__" = adapters off).

On a CPU with bf16 matmul (AVX512-BF16 or AMX) and fp32 weights, the loop multiplies by
bf16 copies of the weights (activations, norms and the KV cache stay fp32): 2.1x the fp32
records/s on the demo extraction here. The LM head is the biggest matmul of a small model
with a large vocabulary (Gemma-3: 640 x 262k, more than the rest of the 270M model): its
bf16 logits pick each greedy row's top candidates, which are re-scored with the fp32
weights, so the head never changes a greedy choice; the layers' bf16 products can (rarely:
the same parse rate and field accuracy on the 64 demo records). SLMTUNE_BF16_MATMUL=0
turns it all off, =head keeps only the exact head, =1 forces both, for comparison.

Why not transformers' ContinuousBatchingManager: its per-request logits processors carry one
number per request (a temperature, a top-p), not a grammar's token mask, so constrained
decoding cannot ride on it; this loop needs only the model's public forward and cache API.
"""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

from slmtune.errors import ConfigError
from slmtune.models import cpu_has_bf16

CANDIDATES = 8  # greedy rows: top bf16 logits re-scored in fp32
MIN_TEMPERATURE = 1e-4  # below it a row is greedy: logits / ~0 would overflow to inf / NaN
PREFILL_ROWS = 4  # prompts per prefill forward: 1 and 16 measured slower on 2 CPU cores


@dataclass(eq=False)
class Row:
    """One answer being decoded."""

    prompt: list[int]
    max_new_tokens: int
    stop_ids: frozenset[int]  # any of these ends the answer (not part of it)
    grammar: object | None = None  # compiled xgrammar grammar; None = unconstrained
    temperature: float = 0.0  # 0 (or below MIN_TEMPERATURE) = greedy
    top_p: float = 1.0
    seed: int | None = None
    adapter: str | None = None  # PEFT adapter name on a multi-adapter model; None = base
    grounding: object | None = None  # infer/ground.Grounding: verbatim values; None = off
    on_token: Callable[[int], bool] | None = None  # sees each new token; True = stop here
    logprobs: list[float] | None = None  # [] = record each chosen token's log-probability
    tag: object = None  # the caller's own bookkeeping
    tokens: list[int] = field(default_factory=list)  # the answer so far
    finish: str | None = None  # "stop" (stop token / on_token), "length" or "error", once done
    error: Exception | None = None  # what ended a row with finish "error"

    @property
    def sampled(self) -> bool:
        return self.temperature >= MIN_TEMPERATURE

    def _start(self) -> None:
        self.matcher = None
        if self.grammar is not None:
            import xgrammar as xgr

            self.matcher = xgr.GrammarMatcher(self.grammar)
        self.generator = None
        if self.sampled:
            self.generator = torch.Generator()
            if self.seed is None:
                self.generator.seed()
            else:
                self.generator.manual_seed(self.seed)

    def _accept(self, token: int) -> bool:
        """Take the next token; True when the answer is complete. A failure in this row's own
        work (its grammar, its callback) ends this row only, never its neighbours."""
        if self.finish == "error":
            return True
        try:
            return self._take(token)
        except Exception as exc:
            self._fail(exc)
            return True

    def _fail(self, exc: Exception) -> None:
        self.finish, self.error = "error", exc

    def _take(self, token: int) -> bool:
        if token in self.stop_ids:
            self.finish = "stop"
            return True
        self.tokens.append(token)
        if self.matcher is not None:
            self.matcher.accept_token(token)
        if self.grounding is not None:
            self.grounding.feed(token)
        if self.on_token is not None and self.on_token(token):
            self.finish = "stop"
        elif len(self.tokens) >= self.max_new_tokens:
            self.finish = "length"
        return self.finish is not None


class DecodeLoop:
    """The rows in flight and their shared KV cache. Not thread-safe: one caller at a time."""

    def __init__(self, model, pad_token_id: int = 0):
        self.model, self.pad = model, pad_token_id
        self.device = model.device
        self.vocab = model.get_output_embeddings().weight.shape[0]
        self.peft = hasattr(model, "peft_config")  # several adapters -> one per row
        self.bf16 = _bf16_matmuls(model)  # None: the model's own fp32 matmuls
        self.head = self.bf16.head if self.bf16 else None
        self.clear()

    def clear(self) -> None:
        """Drop every row (after an error)."""
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # (rows, columns): 1 = a real token
        self.next: torch.Tensor | None = None  # (rows,): chosen, not yet in the cache

    @torch.inference_mode()
    def add(self, rows: list[Row]) -> list[Row]:
        """Prefill `rows` and choose their first tokens; they join the next step.

        Prefill runs shortest first in groups of PREFILL_ROWS (little padding; measured
        fastest on CPU). Returns the rows already complete (first token a stop token)."""
        ordered = sorted(rows, key=lambda r: len(r.prompt))
        finished = []
        for start in range(0, len(ordered), PREFILL_ROWS):
            finished += self._prefill(ordered[start : start + PREFILL_ROWS])
        return finished

    def _prefill(self, rows: list[Row]) -> list[Row]:
        width = max(len(r.prompt) for r in rows)
        ids = torch.tensor([[self.pad] * (width - len(r.prompt)) + r.prompt for r in rows])
        mask = torch.tensor([[0] * (width - len(r.prompt)) + [1] * len(r.prompt) for r in rows])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = GrowingCache()
        for row in rows:
            try:
                row._start()
            except Exception as exc:  # e.g. a grammar that cannot start: this row only
                row._fail(exc)
        logits = self._forward(ids, mask, positions, cache, rows)
        tokens = self._choose(logits, rows)
        done = [row._accept(int(t)) for row, t in zip(rows, tokens.tolist(), strict=True)]
        keep = [i for i, d in enumerate(done) if not d]
        if keep:
            self._join([rows[i] for i in keep], _select(cache, keep), mask[keep], tokens[keep])
        return [row for row, d in zip(rows, done, strict=True) if d]

    @torch.inference_mode()
    def step(self) -> list[Row]:
        """One token for every row in flight; returns the rows that completed (and left)."""
        if not self.rows:
            return []
        positions = self.mask.sum(-1, keepdim=True)  # each row's own length so far
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=-1)
        logits = self._forward(self.next[:, None], self.mask, positions, self.cache, self.rows)
        tokens = self._choose(logits, self.rows)
        done = [row._accept(int(t)) for row, t in zip(self.rows, tokens.tolist(), strict=True)]
        finished = [row for row, d in zip(self.rows, done, strict=True) if d]
        self.next = tokens
        if finished:
            self._keep([i for i, d in enumerate(done) if not d])
        return finished

    def _forward(self, ids, mask, positions, cache, rows) -> torch.Tensor:
        extra = {"adapter_names": [r.adapter or "__base__" for r in rows]} if self.peft else {}
        with self.bf16.installed(self.model) if self.bf16 else contextlib.nullcontext():
            out = self.model(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                position_ids=positions.to(self.device),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
                **extra,
            )
        return out.logits[:, -1, :].float()

    def _choose(self, logits: torch.Tensor, rows: list[Row]) -> torch.Tensor:
        """Next token per row: grammar mask, then greedy or temperature/top-p sampling."""
        constrained = [i for i, r in enumerate(rows) if r.matcher is not None]
        if constrained:
            import xgrammar as xgr

            bitmask = xgr.allocate_token_bitmask(len(rows), self.vocab)  # all tokens allowed
            for i in constrained:
                try:
                    rows[i].matcher.fill_next_token_bitmask(bitmask, i)
                except Exception as exc:  # this row only; it leaves at _accept
                    rows[i]._fail(exc)
            xgr.apply_token_bitmask_inplace(logits, bitmask.to(logits.device))
        for i, row in enumerate(rows):
            if row.grounding is not None and row.finish is None:
                try:
                    _restrict(logits, i, row.grounding.mask())
                except Exception as exc:
                    row._fail(exc)
        tokens = logits.argmax(-1) if self.head is None else self.head.greedy(logits)
        tokens = tokens.cpu()
        for i, row in enumerate(rows):
            if row.sampled and row.finish is None:
                try:
                    tokens[i] = _sample(logits[i].cpu(), row)
                except Exception as exc:
                    row._fail(exc)
        for i, row in enumerate(rows):
            if row.logprobs is not None and row.finish is None:  # under the masks: the choices left
                row.logprobs.append(float(torch.log_softmax(logits[i], -1)[tokens[i]]))
        return tokens

    def _join(self, rows: list[Row], cache: DynamicCache, mask, tokens) -> None:
        if not self.rows:
            self.rows, self.cache, self.mask, self.next = rows, cache, mask, tokens
            return
        width = max(self.mask.shape[1], mask.shape[1])
        self.cache = GrowingCache(
            (torch.cat([_pad(k0, width), _pad(k1, width)]),
             torch.cat([_pad(v0, width), _pad(v1, width)]))
            for (k0, v0, _), (k1, v1, _) in zip(self.cache, cache, strict=True)
        )  # fmt: skip
        self.mask = torch.cat([_pad_mask(self.mask, width), _pad_mask(mask, width)])
        self.next = torch.cat([self.next, tokens])
        self.rows = self.rows + rows

    def _keep(self, keep: list[int]) -> None:
        """Only rows `keep` stay; columns that are padding in every remaining row go."""
        if not keep:
            self.clear()
            return
        self.rows = [self.rows[i] for i in keep]
        self.mask, self.next = self.mask[keep], self.next[keep]
        first = int(self.mask.any(0).nonzero()[0])
        self.cache = _select(self.cache, keep, first)
        self.mask = self.mask[:, first:]


class Bf16Head(torch.nn.Module):
    """All logits from a bf16 copy of the LM head; `greedy` re-scores the best in fp32."""

    def __init__(self, exact: torch.nn.Linear):
        super().__init__()
        self.exact = exact  # the model's own fp32 head (tied to the embeddings: no copy)
        self.weight16 = exact.weight.detach().to(torch.bfloat16)
        self.bias = exact.bias
        self.hidden: torch.Tensor | None = None  # the last forward's input

    @property
    def weight(self) -> torch.Tensor:
        return self.exact.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        # A contiguous 2-D input: a strided one (the last position of a prefill) sends
        # F.linear down a path that copies the whole weight matrix first.
        shape = hidden.shape
        flat = hidden.reshape(-1, shape[-1]).contiguous()
        self.hidden = flat
        logits = F.linear(flat.to(torch.bfloat16), self.weight16).float().view(*shape[:-1], -1)
        return logits if self.bias is None else logits + self.bias

    def greedy(self, logits: torch.Tensor) -> torch.Tensor:
        """argmax of the fp32 logits, found among the top bf16 `logits` (grammar-masked)."""
        top, candidates = logits.topk(CANDIDATES, dim=-1)
        hidden = self.hidden.float()  # (rows, dim): the decoded positions only
        exact = torch.einsum("rd,rkd->rk", hidden, self.exact.weight[candidates])
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
        model.set_output_embeddings(self.head)
        for module, weight16 in self.linears:
            module.forward = functools.partial(_bf16_linear, weight16, module.bias)
        try:
            yield
        finally:
            for module, _ in self.linears:
                del module.forward
            model.set_output_embeddings(self.head.exact)


def _bf16_linear(weight16: torch.Tensor, bias, x: torch.Tensor) -> torch.Tensor:
    y = F.linear(x.to(torch.bfloat16), weight16).to(x.dtype)
    return y if bias is None else y + bias


_BF16: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _bf16_matmuls(model) -> Bf16Matmuls | None:
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


def _select(cache: DynamicCache, rows: list[int], first_column: int = 0) -> DynamicCache:
    if first_column == 0 and rows == list(range(len(rows))) and len(rows) == _batch(cache):
        return cache
    index = torch.tensor(rows)
    return GrowingCache(
        (k[index.to(k.device), :, first_column:], v[index.to(v.device), :, first_column:])
        for k, v, _ in cache
    )


def _batch(cache: DynamicCache) -> int:
    return next(iter(cache))[0].shape[0]


def _pad(t: torch.Tensor, width: int) -> torch.Tensor:
    """Left-pad a (batch, heads, columns, dim) cache tensor with zeros to `width` columns."""
    missing = width - t.shape[-2]
    if not missing:
        return t
    return torch.cat([t.new_zeros(*t.shape[:-2], missing, t.shape[-1]), t], dim=-2)


def _pad_mask(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    return torch.cat([mask.new_zeros(mask.shape[0], missing), mask], dim=1) if missing else mask


def _restrict(logits: torch.Tensor, row: int, mask: tuple[bool, list[int]] | None) -> None:
    """Apply a row's grounding mask (infer/ground.Grounding.mask) to its (already
    grammar-masked) logits. Should it leave no token the grammar allows, the grammar alone
    decides this step."""
    if mask is None:
        return
    only, ids = mask
    index = torch.tensor(ids, dtype=torch.long, device=logits.device)
    if only:
        kept = logits[row, index]
        if torch.isfinite(kept).any():
            logits[row] = float("-inf")
            logits[row, index] = kept
        return
    left = logits[row].clone()
    left[index] = float("-inf")
    if torch.isfinite(left).any():
        logits[row] = left


def _sample(logits: torch.Tensor, row: Row) -> int:
    """Temperature / top-p sampling in float64; NaN-safe: with no finite probability mass
    left (NaN logits from the model) the row falls back to the best finite logit."""
    probs = torch.softmax(logits.double() / row.temperature, dim=-1).nan_to_num(0.0)
    if row.top_p < 1:
        sorted_probs, order = probs.sort(descending=True)
        outside = sorted_probs.cumsum(0) - sorted_probs > row.top_p  # keep the nucleus
        sorted_probs[outside] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    if not probs.sum() > 0:
        return int(logits.nan_to_num(float("-inf")).argmax())
    return int(torch.multinomial(probs, 1, generator=row.generator))
