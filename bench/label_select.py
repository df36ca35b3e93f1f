"""Which texts to label: `label --select random | diverse | uncertain` at equal budgets.

A company's pool of raw complaints: mostly one layout (the training generator's forms) and a
minority of others (the held-out-forms generator). An oracle teacher (a real HTTP endpoint
answering with the gold labels, slmtune/label/oracle.py) labels the texts each strategy
picks; a model is trained on them from the base with the demo's recipe and scored, grounded,
on held-out records of *both* kinds (another seed, never in the pool). `uncertain` ranks by
the doubt of --student (a run trained on the training generator's complaints).

With `--task cluener` the pool is --pool-seen sentences of CLUENER2020's training file
(real news text, no layouts to speak of), the evaluation the first --eval sentences of its dev
file scored by entity micro-F1, and, without --student, the student is trained here from the
base on 100 training sentences outside the pool (demo recipe, the same epochs).

Same pool, same teacher, same training settings and evaluation sets for every strategy.
Writes bench/results/label_select.json (label_select_cluener.json for CLUENER).

Usage: python bench/label_select.py --student RUN [--budgets 32 64] [--epochs 3]
       python bench/label_select.py --task cluener --cluener DIR --budgets 100 200 400
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # tests.serve.harness: the loopback server the tests use too
STRATEGIES = ("random", "diverse", "uncertain")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["complaints", "cluener"], default="complaints")
    p.add_argument("--cluener", help="--task cluener: folder with CLUENER2020 train/dev.json")
    p.add_argument("--student", help="run whose doubt ranks (uncertain)")
    p.add_argument("--budgets", type=int, nargs="+", default=[32, 64])
    p.add_argument("--pool-seen", type=int, default=400, help="pool: training-generator texts")
    p.add_argument("--pool-unseen", type=int, default=100, help="pool: held-out-form texts")
    p.add_argument("--eval", type=int, default=30, help="held-out records of each kind")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    p.add_argument("--workdir", default=str(RESULTS / "work" / "label_select"))
    args = p.parse_args()

    from slmtune.cli import _quiet_libraries
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.label.oracle import oracle_app
    from tests.serve.harness import Server

    _quiet_libraries()
    work = Path(args.workdir) / args.task
    work.mkdir(parents=True, exist_ok=True)
    if args.task == "cluener":
        pool, eval_sets = _cluener_sets(args, work)
    else:
        seen = synthesize("complaints", args.pool_seen, seed=11)
        unseen = synthesize("complaints-unseen", args.pool_unseen, seed=12)
        pool = [{**r, "form": "seen"} for r in seen] + unseen
        random.Random(0).shuffle(pool)
        eval_sets = {
            "unseen forms": work / "eval_unseen.jsonl",
            "training forms": work / "eval_seen.jsonl",
        }
        write_jsonl(synthesize("complaints-unseen", args.eval, seed=5), eval_sets["unseen forms"])
        write_jsonl(synthesize("complaints", args.eval, seed=2), eval_sets["training forms"])
    if "uncertain" in args.strategies and not args.student:
        if args.task != "cluener":
            p.error("--select uncertain needs --student RUN")
        args.student = str(_cluener_student(args, work))
    raw = work / "pool.jsonl"
    write_jsonl([{"id": i, "text": r["instruction"]} for i, r in enumerate(pool)], raw)
    forms = {r["instruction"]: r.get("form", "news") for r in pool}

    server = Server(oracle_app({r["instruction"]: r["output"] for r in pool}))
    results: dict = {}
    try:
        for budget in args.budgets:
            for strategy in args.strategies:
                result = _one(args, work, server, raw, eval_sets, pool[0]["system"], strategy,
                              budget)  # fmt: skip
                result["picked_forms"] = dict(
                    sorted(Counter(forms[t] for t in result.pop("texts")).items())
                )
                results.setdefault(str(budget), {})[strategy] = result
                _scores = {
                    k: v.get("entity_f1", v["field_accuracy"]) for k, v in result["eval"].items()
                }
                print(budget, strategy, json.dumps(_scores), result["picked_forms"], flush=True)
                _write(args, results)
    finally:
        server.stop()


def _cluener_sets(args, work: Path) -> tuple[list[dict], dict[str, Path]]:
    """Pool: --pool-seen random training sentences; evaluation: the first --eval of dev."""
    from slmtune.data.cluener import cluener_records
    from slmtune.data.synth import write_jsonl

    if not args.cluener:
        raise SystemExit("--task cluener needs --cluener DIR (train.json, dev.json)")
    train = cluener_records(Path(args.cluener) / "train.json")
    random.Random(0).shuffle(train)
    pool, rest = train[: args.pool_seen], train[args.pool_seen :]
    write_jsonl(rest[:100], work / "student_train.jsonl")
    eval_sets = {"dev": work / "eval_dev.jsonl"}
    write_jsonl(cluener_records(Path(args.cluener) / "dev.json")[: args.eval], eval_sets["dev"])
    return pool, eval_sets


def _cluener_student(args, work: Path) -> Path:
    """A student that knows a little: the demo recipe on 100 sentences outside the pool."""
    from slmtune.demo import demo_recipe
    from slmtune.run import RunDir
    from slmtune.train.train import train

    run = work / "student"
    if not RunDir(run).is_finished():
        shutil.rmtree(run, ignore_errors=True)
        train(demo_recipe(work / "student_train.jsonl", run, epochs=args.epochs, augment=0))
    return run


def _one(
    args, work: Path, server, raw: Path, eval_sets: dict, system: str, strategy: str, budget: int
) -> dict:
    from slmtune.config import DecodeConfig, LabelConfig
    from slmtune.demo import demo_recipe
    from slmtune.evaluate.evaluate import evaluate
    from slmtune.label.label import label
    from slmtune.train.train import train

    name = f"{strategy}_{budget}"
    labelled = work / f"{name}.jsonl"
    cfg = LabelConfig(
        teacher_url=f"{server.url}/v1",
        teacher_model="oracle",
        system=system,
        select=strategy,
        budget=budget,
        student=args.student if strategy == "uncertain" else None,
        candidates=4 * max(args.budgets) if strategy == "uncertain" else None,
    )
    start = time.time()
    label(str(raw), str(labelled), cfg, overwrite=True, quiet=True)
    select_seconds = time.time() - start
    texts = [json.loads(x)["instruction"] for x in labelled.read_text().splitlines()]
    run = work / f"run_{name}"
    start = time.time()
    shutil.rmtree(run, ignore_errors=True)
    train(demo_recipe(labelled, run, epochs=args.epochs, augment=0))  # as measured
    train_seconds = time.time() - start
    scores = {}
    for set_name, data in eval_sets.items():
        metrics = evaluate(str(run), str(data), str(work / f"eval_{name}_{data.stem}"),
                           DecodeConfig(batch_size=16), quiet=True)  # fmt: skip
        m = next(iter(metrics.values()))
        scores[set_name] = {
            "field_accuracy": m["field_accuracy"],
            "parse_rate": m["parse_rate"],
            "per_field": {k: v["accuracy"] for k, v in m["per_field"].items()},
        }
        if "item_f1" in m:  # list answers (CLUENER): the entity micro-F1
            scores[set_name]["entity_f1"] = m["item_f1"]
    return {
        "texts": texts,
        "eval": scores,
        "seconds": {"label": round(select_seconds, 1), "train": round(train_seconds, 1)},
    }


def _write(args, results: dict) -> None:
    pool = (
        {"CLUENER2020 training sentences": args.pool_seen}
        if args.task == "cluener"
        else {"training-generator texts": args.pool_seen, "held-out-form texts": args.pool_unseen}
    )
    out = {
        "benchmark": f"label --select: learning curves at equal budgets (oracle teacher), "
        f"{args.task}",
        "pool": pool,
        "eval_records_per_set": args.eval,
        "training": f"demo recipe from the base model, {args.epochs} epochs",
        "student": str(args.student),
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (
        "label_select.json" if args.task == "complaints" else "label_select_cluener.json"
    )
    if path.exists():  # strategies run earlier (another --strategies) stay beside the new ones
        earlier = json.loads(path.read_text())["results"]
        for budget, runs in results.items():
            earlier.setdefault(budget, {}).update(runs)
        out["results"] = earlier
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
