"""Grounded (verbatim) fields inside vLLM: infer/ground.py's constraint as a vLLM logits
processor, so `--engine vllm` copies verbatim values from the input as our own loop does.

vLLM (v1) applies the structured-output grammar's bitmask to the logits first, then the
logits processors, then samples: the same order as our loop (grammar, then grounding, then
the choice). `GroundingProcessor` is vLLM's per-request adapter: a request whose
`SamplingParams.extra_args` carry `grounding_args(...)` gets its own infer/ground.Grounding,
which follows the answer's tokens and masks each step's logits (`restrict`: should nothing
the grammar allows be left, the grammar alone decides, as in our loop). The vocabulary by
bytes is built once per engine process from the model's tokenizer, as xgrammar sees it.

Imported by vLLM's engine process by name (`slmtune.infer.vllm_ground:GroundingProcessor`);
only that process needs vLLM.
"""

from __future__ import annotations

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

from slmtune.infer.ground import Grounding, restrict, vocabulary_bytes
from slmtune.run.answer import verbatim_bounds, verbatim_paths, verbatim_shapes

ARGS_KEY = "slmtune_grounding"  # SamplingParams.extra_args key
PROCESSOR = "slmtune.infer.vllm_ground:GroundingProcessor"


def grounding_args(schema: dict | None, source: str | None) -> dict:
    """SamplingParams(extra_args=...) for a request whose verbatim values copy from `source`;
    {} when nothing is verbatim."""
    paths = verbatim_paths(schema)
    if not paths or source is None:
        return {}
    bounds = [[list(p), n] for p, n in verbatim_bounds(schema).items()]
    shapes = [[list(p), *shape] for p, shape in verbatim_shapes(schema).items()]
    return {
        ARGS_KEY: {
            "source": source,
            "paths": [list(p) for p in paths],
            "bounds": bounds,
            "shapes": shapes,
        }
    }


class GroundingProcessor(AdapterLogitsProcessor):
    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool):
        super().__init__(vllm_config, device, is_pin_memory)
        self.model_config = vllm_config.model_config
        self.vocab = None  # TokenBytes, built at the first grounded request

    def is_argmax_invariant(self) -> bool:
        return False  # it changes which token is best

    def new_req_logits_processor(self, params):
        args = (params.extra_args or {}).get(ARGS_KEY)
        if not args:
            return None
        paths = tuple(tuple(p) for p in args["paths"])
        bounds = {tuple(p): n for p, n in args["bounds"]}
        shapes = {tuple(p): (shape, nullable) for p, shape, nullable in args.get("shapes", [])}
        return _Row(Grounding(self._vocabulary(), args["source"], paths, bounds, shapes))

    def _vocabulary(self):
        if self.vocab is None:
            import xgrammar as xgr
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model_config.tokenizer)
            size = self.model_config.get_vocab_size()  # the logits' width
            info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=size)
            self.vocab = vocabulary_bytes(tokenizer, info)
        return self.vocab


class _Row:
    """One request: feeds the answer's new tokens to its Grounding, masks its logits."""

    def __init__(self, grounding: Grounding):
        self.grounding, self.fed = grounding, 0

    def __call__(self, output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
        for token in output_ids[self.fed :]:
            if token < 0:  # a placeholder of vLLM's async scheduling, filled in later
                break
            self.grounding.feed(token)
            self.fed += 1
        restrict(logits[None], 0, self.grounding.mask())  # a view: masks `logits` itself
        return logits
