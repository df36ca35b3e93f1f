"""What one decode step costs with several tokens per row: the measurement behind "draft and
verify" (prompt-lookup drafting, grammar jump-forward) on this CPU.

Drafting pays when verifying k tokens per row in one forward pass costs much less than k
passes of one token. On a GPU at small batch a step is bound by reading the weights, so
extra tokens are nearly free; on a CPU at the batch sizes `extract` runs, a step may
already be bound by arithmetic, and then k tokens cost about k times one. This times the
loop's own forward pass (the demo run's model, its rows prefilled from held-out-form
complaints in demo_out/data/unseen.jsonl, the LM head not included: the loop applies it after the masks) for 1, 2, 4 and
8 new tokens per row at several batch sizes, and writes bench/results/multi_token_step.json.

Usage: python bench/multi_token_step.py [--run demo_out/run] [--batches 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

import slmtune  # noqa: F401  (offline switches first)
from slmtune.infer.decode import DecodeLoop, Row
from slmtune.infer.kv_cache import GrowingCache
from slmtune.run import open_run

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(ROOT / "demo_out" / "run"))
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--tokens", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    loaded = open_run(args.run)
    with open(ROOT / "demo_out" / "data" / "unseen.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["instruction"] for line in f][: max(args.batches)]
    results = {}
    for batch in args.batches:
        loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
        stops = frozenset(loaded.renderer.stop_token_ids)
        loop.add(
            [Row(loaded.renderer.prompt_ids(loaded.prompt(t))[0], 2, stops) for t in texts[:batch]]
        )
        base = [(k.clone(), v.clone()) for k, v, _ in loop.cache]
        row = {}
        for k in args.tokens:
            seconds = []
            for _ in range(args.repeats + 1):
                cache = GrowingCache((a.clone(), b.clone()) for a, b in base)
                mask = torch.cat([loop.mask, loop.mask.new_ones(batch, k)], dim=-1)
                positions = loop.mask.sum(-1, keepdim=True) + torch.arange(k)
                ids = loop.next[:, None].expand(batch, k).contiguous()
                start = time.perf_counter()
                loop._forward(ids, mask, positions, cache, loop.rows)
                seconds.append(time.perf_counter() - start)
            row[k] = round(sorted(seconds[1:])[len(seconds[1:]) // 2] * 1000, 1)  # median, ms
        results[batch] = {
            "ms_per_step": row,
            "ms_per_token_vs_1": {k: round(row[k] / k / row[1], 3) for k in row},
        }
        print(
            f"batch {batch}: ms per step {row}; per token vs 1 token: {results[batch]['ms_per_token_vs_1']}"
        )
    out = ROOT / "bench" / "results" / "multi_token_step.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": __doc__.splitlines()[0],
                "run": args.run,
                "machine": f"{os.cpu_count()} CPU cores",
                "threads": torch.get_num_threads(),
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print("wrote", out)


if __name__ == "__main__":
    main()
