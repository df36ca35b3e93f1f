"""Extraction speed: the seeds' inference loop vs `slmtune extract`, same model, same records.

  seeds    one record at a time, `generate(max_length=2500, do_sample=True, top_k=1)`
           (NOTES.md). Two favours to the baseline so the ratio is about decoding only: it
           gets the same prompt token ids as slmtune, the adapter already merged, and the
           template's turn-end token as a stop token (without it, it runs to 2500 tokens).
  slmtune  `slmtune extract` defaults: 32 answers in flight (continuous batching),
           xgrammar-constrained JSON from the run's schema.

The seeds' loop takes half a minute to a minute per record on 2 cores (some answers never
stop before 2500 tokens), so by default it is timed on the first 16 records (--seeds-records) while
slmtune answers all of them; accuracy is also reported on exactly those 16.

Records: fresh synthetic complaints (seed 3; the demo trained on seed 1 and tested on seed 2).
Both are scored against the references with slmtune's evaluator. Model loading is excluded
from both times. Prints a table and writes bench/results/extract_speed.json.

Usage: python bench/extract_speed.py [--run demo_out/run] [--records 64] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(ROOT / "demo_out" / "run"), help="a fine-tuned run")
    p.add_argument("--records", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--seeds-records",
        type=int,
        default=16,
        help="time the seeds' loop on the first N records only (it takes ~1 min per record)",
    )
    p.add_argument("--skip-seeds", action="store_true", help="only time slmtune extract")
    p.add_argument("--workdir", default=str(RESULTS / "work"))
    args = p.parse_args()

    from slmtune.cli import _quiet_libraries
    from slmtune.data.load import load_examples
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.evaluate.metrics import score

    _quiet_libraries()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    write_jsonl(synthesize("complaints", args.records, seed=3), work / "extract_records.jsonl")
    examples = load_examples(work / "extract_records.jsonl").examples
    texts = [e.prompt_messages[-1].content for e in examples]  # the user turn, as trained
    references = [e.answer for e in examples]

    results = {}
    if not args.skip_seeds:
        n = min(args.seeds_records, len(texts))
        predictions, seconds, tokens = seeds_loop(args.run, texts[:n])
        results["seeds"] = _row(references[:n], predictions, seconds, score, tokens)
        print(f"seeds: {results['seeds']['records_per_second']} rec/s", flush=True)
    predictions, seconds, tokens = slmtune_extract(args.run, texts, work, args.batch_size)
    results["slmtune extract"] = _row(references, predictions, seconds, score, tokens)
    if "seeds" in results:  # accuracy on exactly the records the seeds' loop answered
        subset = _row(references[:n], predictions[:n], seconds, score, tokens)
        results["slmtune extract"]["field_accuracy_on_seeds_records"] = subset["field_accuracy"]

    if "seeds" in results:
        ratio = results["slmtune extract"]["records_per_second"] / max(
            results["seeds"]["records_per_second"], 1e-9
        )
        results["speedup"] = round(ratio, 2)
    report = {"records": args.records, "batch_size": args.batch_size, "results": results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "extract_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    _print_table(results)


def seeds_loop(run: str, texts: list[str]) -> tuple[list[str], float]:
    import torch

    from slmtune.run import open_run

    opened = open_run(run)
    tok, renderer = opened.tokenizer, opened.renderer
    answers, tokens = [], 0
    start = time.time()
    with torch.inference_mode():
        for text in texts:
            ids, _ = renderer.prompt_ids(opened.prompt(text))
            out = opened.model.generate(
                input_ids=torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                max_length=2500,
                do_sample=True,
                top_k=1,
                eos_token_id=renderer.stop_token_ids,
                pad_token_id=tok.pad_token_id,
            )
            tokens += out.shape[1] - len(ids)
            raw = tok.decode(out[0, len(ids) :], skip_special_tokens=True)
            answers.append(
                raw.split(renderer.turn_end)[0].strip() if renderer.turn_end else raw.strip()
            )
    return answers, time.time() - start, tokens


def slmtune_extract(run: str, texts: list[str], work: Path, batch_size: int):
    from slmtune.config import ExtractConfig
    from slmtune.infer.extract import extract

    src, out = work / "extract_input.jsonl", work / "extract_output.jsonl"
    rows = [{"id": i, "text": t} for i, t in enumerate(texts)]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    cfg = ExtractConfig(batch_size=batch_size)
    summary = extract(run, str(src), str(out), cfg, overwrite=True, quiet=True)
    results = [json.loads(line) for line in out.read_text().splitlines()]
    answers = [
        json.dumps(r["output"], ensure_ascii=False) if r["output"] is not None else r.get("raw", "")
        for r in results
    ]
    return answers, summary["seconds"], summary["new_tokens"]


def _row(references, predictions, seconds, score, tokens) -> dict:
    metrics = score(references, predictions)
    return {
        "records": len(predictions),
        "seconds": round(seconds, 1),
        "generated_tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "records_per_second": round(len(predictions) / seconds, 3),
        "parse_rate": metrics["parse_rate"],
        "field_accuracy": metrics["field_accuracy"],
        "record_exact": metrics["record_exact"],
    }


def _print_table(results: dict) -> None:
    head = f"{'variant':<18}{'records':>8}{'rec/s':>8}{'tok/s':>7}{'tok/rec':>8}{'parse':>7}"
    print(f"\n{head}{'field acc':>11}{'exact':>7}")
    for name, r in results.items():
        if isinstance(r, dict):
            per = r["generated_tokens"] / r["records"]
            print(
                f"{name:<18}{r['records']:>8}{r['records_per_second']:>8.3f}"
                f"{r['tokens_per_second']:>7.1f}{per:>8.0f}{r['parse_rate']:>7.3f}"
                f"{r['field_accuracy']:>11.3f}{r['record_exact']:>7.3f}"
            )
    if "speedup" in results:
        print(f"\nslmtune extract / seeds: {results['speedup']}x records/s")


if __name__ == "__main__":
    main()
