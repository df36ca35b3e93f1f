"""Batched generation with the training template: greedy by default, stops at the turn end.

Every path that generates (predict, eval, extract, serve) runs the same decode loop
(infer/decode.py), so they all give the same answer to the same prompt.

With a JSON Schema (GenerationConfig.schema) decoding is constrained by xgrammar, so every
answer is valid JSON with exactly the schema's keys.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from slmtune.data.types import Message
from slmtune.infer.constrain import compiled_grammar
from slmtune.infer.decode import DecodeLoop, Row
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


def generate_many(
    loaded: Loaded, prompts: list[list[Message]], cfg: GenerationConfig | None = None, progress=None
) -> list[Generation]:
    """Like `generate`, with token counts and flags per answer.

    Runs the continuous-batching decode loop (infer/decode.py) with up to `cfg.batch_size`
    answers in flight: prompts go in shortest first (little padding) and a finished answer's
    place is refilled at once, so one long answer never holds a whole batch back.
    """
    cfg = cfg or GenerationConfig()
    tok, renderer = loaded.tokenizer, loaded.renderer
    encoded = [renderer.prompt_ids(p) for p in prompts]
    grammar = compiled_grammar(loaded, cfg.schema) if cfg.schema else None
    rows = [
        Row(
            prompt=ids,
            max_new_tokens=cfg.max_new_tokens,
            stop_ids=frozenset(renderer.stop_token_ids),
            grammar=grammar,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            seed=None if cfg.seed is None else cfg.seed + i,
            on_token=_TextStop(tok, renderer.stop_strings),
        )
        for i, (ids, _) in enumerate(encoded)
    ]
    waiting = deque(sorted(rows, key=lambda r: len(r.prompt)))
    loop = DecodeLoop(loaded.model, tok.pad_token_id)
    while waiting or loop.rows:
        room = min(cfg.batch_size - len(loop.rows), len(waiting))
        finished = loop.add([waiting.popleft() for _ in range(room)]) if room else []
        finished += loop.step()
        if progress and finished:
            progress(len(finished))
    results = []
    for row, (_, shortened) in zip(rows, encoded, strict=True):
        raw = tok.decode(row.tokens, skip_special_tokens=True)
        text = clean_answer(raw, renderer.turn_end)
        results.append(
            Generation(text, len(row.prompt), len(row.tokens), row.finish == "stop", shortened)
        )
    return results


class _TextStop:
    """Ends a row when a multi-token turn-end marker (a stop string) appears in its text."""

    def __init__(self, tokenizer, stop_strings: list[str]):
        self.tok, self.stops, self.tokens = tokenizer, stop_strings, []

    def __call__(self, token: int) -> bool:
        if not self.stops:
            return False
        self.tokens.append(token)
        tail = self.tok.decode(self.tokens[-16:], skip_special_tokens=False)
        return any(s in tail for s in self.stops)


def clean_answer(text: str, turn_end: str) -> str:
    """Cut at a textual turn-end marker (multi-token templates) and trim whitespace."""
    if turn_end and turn_end in text:
        text = text[: text.index(turn_end)]
    return text.strip()
