"""Batched generation with the training template: greedy by default, stops at the turn end.

With a JSON Schema (GenerationConfig.schema) decoding is constrained by xgrammar, so every
answer is valid JSON with exactly the schema's keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from slmtune.data.types import Message
from slmtune.infer.constrain import GrammarProcessor, compiled_grammar
from slmtune.runs import Loaded


@dataclass
class GenerationConfig:
    max_new_tokens: int = 256
    batch_size: int = 8
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None
    schema: dict | None = None  # constrain answers to this JSON Schema


@dataclass
class Generation:
    """One answer and what it cost."""

    text: str
    prompt_tokens: int
    new_tokens: int
    finished: bool  # emitted a stop token (False: cut at max_new_tokens)
    prompt_truncated: bool  # the input was shortened to fit the context


def build_messages(text: str, system_prompt: str | None) -> list[Message]:
    """The prompt for a bare input text: the run's system prompt (if any) + the text."""
    messages = [Message("system", system_prompt)] if system_prompt else []
    return [*messages, Message("user", text)]


def generate(
    loaded: Loaded, prompts: list[list[Message]], cfg: GenerationConfig | None = None, progress=None
) -> list[str]:
    """Answer every prompt (a list of messages ending with a user turn); input order kept."""
    return [g.text for g in generate_many(loaded, prompts, cfg, progress)]


@torch.inference_mode()
def generate_many(
    loaded: Loaded, prompts: list[list[Message]], cfg: GenerationConfig | None = None, progress=None
) -> list[Generation]:
    """Like `generate`, with token counts and flags per answer.

    Prompts are sorted by length so each batch pads little, padded on the left so all rows
    end at the generation prompt, and decoded (KV cache) until every row emitted a stop token.
    """
    cfg = cfg or GenerationConfig()
    tok, renderer = loaded.tokenizer, loaded.renderer
    encoded = [renderer.prompt_ids(p) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    results: list[Generation | None] = [None] * len(encoded)
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    grammar = compiled_grammar(loaded, cfg.schema) if cfg.schema else None
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        rows = [encoded[i][0] for i in idx]
        out, width = generate_batch(loaded, rows, cfg, [grammar] * len(rows) if grammar else None)
        for row, i in enumerate(idx):
            new, stopped = _answer_tokens(out[row, width:].tolist(), renderer, tok.pad_token_id)
            raw = tok.decode(new, skip_special_tokens=True)
            finished = stopped or bool(renderer.turn_end and renderer.turn_end in raw)
            text = clean_answer(raw, renderer.turn_end)
            results[i] = Generation(text, len(rows[row]), len(new), finished, encoded[i][1])
        if progress:
            progress(len(idx))
    return results


def generate_batch(
    loaded: Loaded,
    rows: list[list[int]],
    cfg: GenerationConfig,
    grammars: list | None = None,
    stopping_criteria=None,
):
    """One left-padded generate() call over prompt token ids; returns (output ids, width).

    grammars: a compiled grammar (or None) per row. stopping_criteria: extra per-row stops.
    """
    tok, model, renderer = loaded.tokenizer, loaded.model, loaded.renderer
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    sampling = cfg.temperature > 0
    out = model.generate(
        input_ids=ids.to(model.device),
        attention_mask=mask.to(model.device),
        max_new_tokens=cfg.max_new_tokens,
        do_sample=sampling,
        temperature=cfg.temperature if sampling else None,
        top_p=cfg.top_p if sampling else None,
        top_k=None,
        eos_token_id=renderer.stop_token_ids,
        pad_token_id=pad,
        stop_strings=renderer.stop_strings or None,
        tokenizer=tok if renderer.stop_strings else None,
        logits_processor=[GrammarProcessor(grammars)] if grammars else None,
        stopping_criteria=stopping_criteria,
    )
    return out, width


def _answer_tokens(generated: list[int], renderer, pad: int) -> tuple[list[int], bool]:
    """The tokens a row really produced: up to its first stop token, without the padding
    generate() appends once a row is done. Second value: whether a stop token came."""
    stops = set(renderer.stop_token_ids)
    for n, token in enumerate(generated):
        if token in stops:
            return generated[: n + 1], True
    while generated and generated[-1] == pad:
        generated.pop()
    return generated, False


def clean_answer(text: str, turn_end: str) -> str:
    """Cut at a textual turn-end marker (multi-token templates) and trim whitespace."""
    if turn_end and turn_end in text:
        text = text[: text.index(turn_end)]
    return text.strip()
