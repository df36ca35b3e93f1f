"""Continuous batching: one decode loop that requests join and leave between steps.

`model.generate()` decodes a fixed batch until its longest answer ends. Here each step is one
forward pass over the rows in flight: a row that ends leaves at once, and new rows are
prefilled and join before the next step, so the batch stays full while work is waiting.

Rows share one KV cache (infer/kv_cache.py: a transformers DynamicCache whose layers grow
into spare room instead of concatenating every step), left-padded to a common width: the
attention mask hides the padding, position ids count each row's own tokens, and columns no
row uses any more are cut off when rows leave. Every row has its own token limit, stop
tokens, grammar (xgrammar token masks), temperature/top-p and seed, and on a multi-adapter
PEFT model its own LoRA adapter (PEFT's mixed-batch `adapter_names`, "__base__" = off).

On a CPU with bf16 matmul (AVX512-BF16 or AMX) and fp32 weights, the loop multiplies by bf16
copies of the weights (infer/bf16.py; SLMTUNE_BF16_MATMUL to compare).

The LM head is the biggest matmul of a small model with a large vocabulary (Gemma-3:
640 x 262k, more than the rest of the 270M model), so it is applied after the masks, not
inside the forward pass: the grammar and the grounding usually leave a row a handful of
tokens (the next key, a separator, the bytes that continue a copied value), and such a row
gets the exact fp32 logits of those tokens only, from one gather of their rows of the
head's weight; rows left many tokens share one pass of the full head. The choice is the one
the full head would make under the same masks (tested); SLMTUNE_SPARSE_HEAD=0 computes the
full head for every row, for comparison.

Every request of a task begins with the same template and system prompt, so the loop keeps
the KV of recent prompts (a few per adapter, infer/kv_cache.py's PrefixStore) and a new
group of rows that starts like one of them prefills only the rest: the stored columns are
copied in front, the new tokens take the positions after them, and the padding the group
leaves between the two is moved to the left after the prefill. The answers are the ones a
whole prefill gives (tested, logprobs included); SLMTUNE_PREFIX_CACHE=0 prefills every
prompt whole, for comparison.

A greedy row also feeds a few drafted tokens per step (infer/drafting.py: what its grammar
forces, else what followed its last tokens in the prompt), checked in the same pass and kept as
far as the real choice agrees; SLMTUNE_DRAFT=0 feeds one token per row, for comparison.

Not transformers' ContinuousBatchingManager: its per-request logits processors carry a number
(a temperature, a top-p), not a grammar's token mask.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from slmtune.errors import ConfigError
from slmtune.infer.bf16 import bf16_matmuls
from slmtune.infer.drafting import PromptLookup, draft
from slmtune.infer.ground import restrict
from slmtune.infer.head import HiddenTap, hooked
from slmtune.infer.kv_cache import (
    GrowingCache,
    PrefixStore,
    assemble,
    holes_to_left,
    left_pad_mask,
    rows_in,
    select_rows,
)
from slmtune.infer.sampling import MIN_TEMPERATURE, sample
from slmtune.infer.token_masks import allowed_bits, popcount, set_bits

SPARSE_MAX = 2048  # a row whose masks leave at most this many tokens gets only their logits
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
    passes: int = 0  # forward passes it took part in (its prefill included)

    @property
    def sampled(self) -> bool:
        return self.temperature >= MIN_TEMPERATURE

    def sample(self, logits: torch.Tensor) -> int:
        return sample(logits, self.temperature, self.top_p, self.generator)

    def _start(self) -> None:
        self.matcher = None
        if self.grammar is not None:
            import xgrammar as xgr

            self.matcher = xgr.GrammarMatcher(self.grammar)
        self.lookup = PromptLookup(self.prompt)
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
        self.bf16 = bf16_matmuls(model)  # None: the model's own fp32 matmuls
        self.head = self.bf16.head if self.bf16 else None  # None: the exact fp32 head
        self.exact = model.get_output_embeddings()
        self.softcap = getattr(model.config, "final_logit_softcapping", None)
        self.tap = HiddenTap(self.exact)
        self.sparse = _switch("SLMTUNE_SPARSE_HEAD")  # few allowed tokens -> only their logits
        self.prefixes = PrefixStore() if _switch("SLMTUNE_PREFIX_CACHE") else None
        self.window = getattr(model.config.get_text_config(), "sliding_window", None)
        self.draft = _switch("SLMTUNE_DRAFT")  # greedy rows verify drafted tokens
        self.clear()

    def clear(self) -> None:
        """Drop every row (after an error)."""
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # (rows, columns): 1 = a real token
        self.next: torch.Tensor | None = None  # (rows,): chosen, not yet in the cache
        # Rows that left are dropped from the cache lazily: (the cache rows that stay, the
        # first column kept), applied by the next join in the same copy, else before a step.
        self.leaving: tuple[list[int], int] | None = None

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
        stored, shared = self._stored_start(rows)
        rest = [r.prompt[shared:] for r in rows]
        width = max(len(t) for t in rest)
        ids = torch.tensor([[self.pad] * (width - len(t)) + t for t in rest])
        new = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in rest])
        positions = shared + (new.cumsum(-1) - 1).clamp(min=0)
        mask = torch.cat([new.new_ones(len(rows), shared), new], dim=1)
        cache = self.prefixes.cache(stored, shared, len(rows)) if shared else GrowingCache()
        for row in rows:
            try:
                row._start()
            except Exception as exc:  # e.g. a grammar that cannot start: this row only
                row._fail(exc)
        hidden = self._forward(ids, mask, positions, cache, rows)
        for row in rows:
            row.passes += 1
        if shared:  # padding sat between the stored start and the rest
            cache, mask = holes_to_left(cache, mask)
        elif self.prefixes is not None:
            self.prefixes.remember(rows[0].adapter, rows[0].prompt, cache, 0)
        tokens = self._choose(hidden, rows)
        done = [row._accept(int(t)) for row, t in zip(rows, tokens.tolist(), strict=True)]
        keep = [i for i, d in enumerate(done) if not d]
        if keep:
            self._join([rows[i] for i in keep], cache, keep, mask[keep], tokens[keep])
        return [row for row, d in zip(rows, done, strict=True) if d]

    def _stored_start(self, rows: list[Row]):
        """A stored prompt that all `rows` start with (same adapter), and how many of their
        tokens it holds; (None, 0) when there is none to use. Each row still prefills at
        least its last token (its first answer token comes from it). On a sliding-window
        model the padding between the start and the rest would count against the window,
        so a group longer than the window prefills whole."""
        if self.prefixes is None or len({r.adapter for r in rows}) > 1:
            return None, 0
        stored, shared = self.prefixes.lookup(rows[0].adapter, [r.prompt for r in rows])
        shared = min(shared, min(len(r.prompt) for r in rows) - 1)
        too_long = self.window is not None and max(len(r.prompt) for r in rows) > self.window
        if stored is None or shared < 1 or too_long:
            return None, 0
        return stored, shared

    @torch.inference_mode()
    def step(self) -> list[Row]:
        """One forward pass for every row in flight: each row's next token, and as many of
        its drafted tokens as greedy decoding would have chosen too. Returns the rows that
        completed (and left)."""
        if not self.rows:
            return []
        self._settle()
        drafts = [draft(row) if self.draft else [] for row in self.rows]
        q = 1 + max(map(len, drafts))  # tokens per row in this pass
        self._compact(q)
        width = self.mask.shape[1]
        ids = torch.tensor(
            [[0] + d + [self.pad] * (q - 1 - len(d)) for d in drafts], dtype=torch.long
        )
        ids[:, 0] = self.next
        positions = self.mask.sum(-1, keepdim=True) + torch.arange(q)  # each row's own
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), q)], dim=-1)
        hidden = self._forward(ids, self.mask, positions, self.cache, self.rows, q)
        for row in self.rows:
            row.passes += 1
        tokens, used, done = self._verify(hidden.view(len(self.rows), q, -1), drafts)
        for i, n in enumerate(used):
            self.mask[i, width + n :] = 0  # rejected drafts: their columns become holes
        finished = [row for row, d in zip(self.rows, done, strict=True) if d]
        self.next = tokens
        if finished:
            self._keep([i for i, d in enumerate(done) if not d])
        return finished

    def _verify(self, hidden: torch.Tensor, drafts: list[list[int]]):
        """Choose each row's tokens position by position, under the masks as a plain step
        would: a row goes on to its next position while the token chosen equals its draft
        there (that position's input). Returns the last token chosen per row (the next
        input), how many of the pass's positions hold real tokens per row, and which rows
        are complete."""
        rows, q = self.rows, hidden.shape[1]
        head_logits = self.tap.logits  # a head that ran in the forward pass: (rows * q, vocab)
        if head_logits is not None:
            head_logits = head_logits.view(len(rows), q, -1)
        tokens = torch.zeros(len(rows), dtype=torch.long)
        used, done = [0] * len(rows), [False] * len(rows)
        active = list(range(len(rows)))
        for j in range(q):
            if not active:
                break
            if head_logits is not None:
                self.tap.logits = head_logits[active, j]
            chosen = self._choose(hidden[active, j], [rows[i] for i in active])
            going = []
            for i, token in zip(active, chosen.tolist(), strict=True):
                done[i] = rows[i]._accept(token)
                tokens[i], used[i] = token, j + 1
                if not done[i] and j < len(drafts[i]) and token == drafts[i][j]:
                    going.append(i)
            active = going
        return tokens, used, done

    def _compact(self, q: int) -> None:
        """Close the holes rejected drafts left (their columns move to each row's left
        padding) when they would count against a sliding window, or take half the cache."""
        real = self.mask.cumsum(-1) > 0
        holes = int((real & (self.mask == 0)).sum())
        if not holes:
            return
        near_window = self.window is not None and self.mask.shape[1] + q > self.window
        if near_window or holes * 2 > self.mask.numel():
            self.cache, self.mask = holes_to_left(self.cache, self.mask)
            first = int(self.mask.any(0).nonzero()[0])
            self.cache = select_rows(self.cache, list(range(len(self.rows))), first)
            self.mask = self.mask[:, first:]

    def _forward(self, ids, mask, positions, cache, rows, keep: int = 1) -> torch.Tensor:
        """The decoder over the new tokens; returns the hidden states of each row's last
        `keep` positions (rows * keep, dim). The LM head is not applied here: `_choose`
        applies it after the masks."""
        extra = {"adapter_names": [r.adapter or "__base__" for r in rows]} if self.peft else {}
        # A plain head is applied later, under the masks; a wrapped (LoRA) or hooked one runs
        # inside the forward pass as before, so its adapters and hooks see every call.
        self.tap.run_head = type(self.exact) is not torch.nn.Linear or hooked(self.exact)
        self.model.set_output_embeddings(self.tap)
        try:
            with self.bf16.installed(self.model) if self.bf16 else contextlib.nullcontext():
                self.model(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=keep,
                    **extra,
                )
        finally:
            self.model.set_output_embeddings(self.exact)
        return self.tap.hidden

    def logits(self, hidden: torch.Tensor, rows: list[int] | None = None) -> torch.Tensor:
        """Every token's logit for the rows (all, or `rows`) of the last forward pass, from
        their hidden states: the bf16 head copy where there is one (greedy picks are re-scored
        exactly, see Bf16Head.greedy), else the fp32 head, or what a head that ran in the
        forward pass gave."""
        if self.tap.logits is not None:
            logits = self.tap.logits.float()
            return self._capped(logits if rows is None else logits[rows])
        hidden = hidden if rows is None else hidden[rows]
        if self.head is not None:
            return self._capped(self.head(hidden))
        return self._capped(self.exact(hidden).float())

    def _capped(self, logits: torch.Tensor) -> torch.Tensor:
        if self.softcap:  # Gemma-2 style: the model's own forward would have done this
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def _choose(self, hidden: torch.Tensor, rows: list[Row]) -> torch.Tensor:
        """Next token per row: grammar mask (and grounding), then greedy or temperature /
        top-p sampling. Rows the masks leave few tokens get only those tokens' exact logits
        (see the module docstring); the other rows share one pass of the full head."""
        bitmask = self._grammar_masks(rows)
        few: dict[int, torch.Tensor] = {}  # row -> the only tokens it may take
        full = []
        grounds: dict[int, tuple | None] = {}  # row -> its grounding mask, made once a step
        for i, row in enumerate(rows):
            if row.finish is not None:  # failed while masking: _accept ends it
                continue
            try:
                if row.grounding is not None:
                    grounds[i] = row.grounding.mask()
                ids = self._few_allowed(i, row, bitmask, grounds.get(i))
            except Exception as exc:
                row._fail(exc)
                continue
            if ids is None:
                full.append(i)
            else:
                few[i] = ids
        tokens = torch.zeros(len(rows), dtype=torch.long)
        for (i, ids), logits in zip(few.items(), self._logits_of(hidden, few), strict=True):
            row = rows[i]
            try:
                pick = row.sample(logits) if row.sampled else int(logits.argmax())
                tokens[i] = ids[pick]
                if row.logprobs is not None:  # under the masks: the choices left
                    row.logprobs.append(float(torch.log_softmax(logits, -1)[pick]))
            except Exception as exc:
                row._fail(exc)
        if full:
            tokens[full] = self._choose_full(hidden, full, rows, bitmask, grounds)
        return tokens

    def _logits_of(self, hidden: torch.Tensor, few: dict[int, torch.Tensor]) -> list:
        """fp32 logits of each row's own few tokens, from one gather of the head's rows for
        all of them (measured here: 32 gathers of 300 rows took ~260 ms, one of 9,600 ~14 ms)."""
        if not few:
            return []
        sizes = [len(ids) for ids in few.values()]
        weight = self.exact.weight
        ids = torch.cat(list(few.values())).to(weight.device)
        owner = torch.repeat_interleave(torch.tensor(list(few)), torch.tensor(sizes))
        logits = (weight[ids].float() * hidden[owner.to(hidden.device)].float()).sum(-1)
        if self.exact.bias is not None:
            logits = logits + self.exact.bias[ids]
        return list(self._capped(logits).cpu().split(sizes))

    def _grammar_masks(self, rows: list[Row]) -> torch.Tensor | None:
        """xgrammar's allowed-token bitmask per row (all allowed for rows without grammar)."""
        constrained = [i for i, r in enumerate(rows) if r.matcher is not None]
        if not constrained:
            return None
        import xgrammar as xgr

        bitmask = xgr.allocate_token_bitmask(len(rows), self.vocab)  # all tokens allowed
        for i in constrained:
            try:
                rows[i].matcher.fill_next_token_bitmask(bitmask, i)
            except Exception as exc:  # this row only; it leaves at _accept
                rows[i]._fail(exc)
        return bitmask

    def _few_allowed(self, i: int, row: Row, bitmask, ground) -> torch.Tensor | None:
        """The tokens row i may take (under the grammar and the grounding mask `ground`),
        when they are few (at most SPARSE_MAX); else None."""
        if row.matcher is None or not self.sparse or self.tap.run_head:
            return None
        words = bitmask[i]
        if ground is not None and ground[0]:  # grounding: only these (within the grammar)
            ids = torch.tensor(ground[1], dtype=torch.long).unique()
            ids = ids[ids < self.vocab]
            ids = ids[allowed_bits(words, ids)]
            if len(ids):
                return ids if len(ids) <= SPARSE_MAX else None
            ground = None  # none the grammar allows: the grammar alone decides (as restrict)
        if popcount(words, self.vocab) > SPARSE_MAX + (len(ground[1]) if ground else 0):
            return None
        ids = set_bits(words, self.vocab)
        if ground is not None:  # grounding: not these
            left = ids[~torch.isin(ids, torch.tensor(ground[1], dtype=torch.long))]
            ids = left if len(left) else ids
        return ids if len(ids) <= SPARSE_MAX else None

    def _choose_full(self, hidden, full: list[int], rows: list[Row], bitmask, grounds: dict):
        """`_choose` for rows `full`, whose masks leave many tokens: the full head, then the
        masks."""
        logits = self.logits(hidden, full)
        ground_masks = [grounds.get(i) for i in full]
        hidden, rows = hidden[full], [rows[i] for i in full]
        if bitmask is not None:
            import xgrammar as xgr

            xgr.apply_token_bitmask_inplace(logits, bitmask[full].to(logits.device))
        for i, row in enumerate(rows):
            if ground_masks[i] is not None and row.finish is None:
                try:
                    restrict(logits, i, ground_masks[i])
                except Exception as exc:
                    row._fail(exc)
        exact = self.head is None or self.tap.logits is not None
        tokens = logits.argmax(-1) if exact else self.head.greedy(logits, hidden)
        tokens = tokens.cpu()
        for i, row in enumerate(rows):
            if row.sampled and row.finish is None:
                try:
                    tokens[i] = row.sample(logits[i].cpu())
                except Exception as exc:
                    row._fail(exc)
        for i, row in enumerate(rows):
            if row.logprobs is not None and row.finish is None:  # under the masks: the choices left
                row.logprobs.append(float(torch.log_softmax(logits[i], -1)[tokens[i]]))
        return tokens

    def _join(self, rows: list[Row], cache: DynamicCache, cache_rows: list[int], mask, tokens):
        """Rows `rows` (rows `cache_rows` of a prefilled `cache`) join the loop: one new
        cache of the rows that stay and the new ones, left-padded to a common width."""
        if not self.rows:
            self.rows, self.mask, self.next = rows, mask, tokens
            self.cache, self.leaving = select_rows(cache, cache_rows), None
            return
        width = max(self.mask.shape[1], mask.shape[1])
        mine = self.leaving or (list(range(len(self.rows))), 0)
        self.cache = assemble([(self.cache, *mine), (cache, cache_rows, 0)], width)
        self.leaving = None
        self.mask = torch.cat([left_pad_mask(self.mask, width), left_pad_mask(mask, width)])
        self.next = torch.cat([self.next, tokens])
        self.rows = self.rows + rows

    def _keep(self, keep: list[int]) -> None:
        """Only rows `keep` stay; columns that are padding in every remaining row go. The
        cache follows lazily (self.leaving): a join usually comes next and does both at once."""
        if not keep:
            self.clear()
            return
        self.rows = [self.rows[i] for i in keep]
        self.mask, self.next = self.mask[keep], self.next[keep]
        first = int(self.mask.any(0).nonzero()[0])
        self.mask = self.mask[:, first:]
        rows, before = self.leaving or (list(range(rows_in(self.cache))), 0)
        self.leaving = ([rows[i] for i in keep], before + first)

    def _settle(self) -> None:
        """Drop the rows that left from the cache now (before a step reads it)."""
        if self.leaving is not None:
            self.cache = select_rows(self.cache, *self.leaving)
            self.leaving = None


def _switch(name: str) -> bool:
    """A speed lever's switch: on unless the environment variable is 0 (to compare)."""
    wanted = os.environ.get(name, "1")
    if wanted not in ("0", "1"):
        raise ConfigError(f"{name}={wanted}: use 0 or 1")
    return wanted == "1"
