"""Batched generation with the training template: greedy by default, stops at the turn end."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from slmtune.data.types import Message
from slmtune.runs import Loaded


@dataclass
class GenerationConfig:
    max_new_tokens: int = 256
    batch_size: int = 8
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int | None = None


def build_messages(text: str, system_prompt: str | None) -> list[Message]:
    """The prompt for a bare input text: the run's system prompt (if any) + the text."""
    messages = [Message("system", system_prompt)] if system_prompt else []
    return [*messages, Message("user", text)]


@torch.inference_mode()
def generate(
    loaded: Loaded, prompts: list[list[Message]], cfg: GenerationConfig | None = None, progress=None
) -> list[str]:
    """Answer every prompt (a list of messages ending with a user turn); input order kept.

    Prompts are sorted by length so each batch pads little, padded on the left so all rows
    end at the generation prompt, and decoded until every row emitted a stop token.
    """
    cfg = cfg or GenerationConfig()
    tok, model, renderer = loaded.tokenizer, loaded.model, loaded.renderer
    encoded = [renderer.prompt_ids(p)[0] for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    answers: list[str] = [""] * len(encoded)
    if cfg.seed is not None:
        torch.manual_seed(cfg.seed)
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        width = max(len(encoded[i]) for i in idx)
        pad = tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in idx])
        mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in idx])
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
        )
        for row, i in enumerate(idx):
            answers[i] = clean_answer(
                tok.decode(out[row, width:], skip_special_tokens=True), renderer.turn_end
            )
        if progress:
            progress(len(idx))
    return answers


def clean_answer(text: str, turn_end: str) -> str:
    """Cut at a textual turn-end marker (multi-token templates) and trim whitespace."""
    if turn_end and turn_end in text:
        text = text[: text.index(turn_end)]
    return text.strip()
