"""Quality on forms the model never saw: a run scored on its own test split and on the held-out
forms generators (slmtune/data/synth/unseen.py, set A; unseen_b.py, set B; unseen_c.py, set C;
unseen_d.py, set D; unseen_e.py, set E),
with and without grounded (verbatim) decoding.

Same run, same records, same batches; up to three decodings:
  grounded   the run's schema.json as training wrote it (copied fields marked verbatim, with
             a shape where they have one)
  unshaped   the same without the shapes (--shapes: when the schema has any)
  free       the same schema with the verbatim marks removed (JSON grammar only)
--relearn-from TRAIN: the schema this code learns from the run's training records, for a
run whose schema.json predates a rule of run/schema.py.
Reported per set and per form: field accuracy (long text fields by similarity >= 0.8, as
`slmtune eval` scores them), parse rate, and answers with a copied field that is not in their
input. Writes bench/results/unseen_<task>_<run name>.json.

Usage: python bench/unseen.py --run RUN --task complaints [--test FILE] [--unseen 240]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# the held-out forms sets, scored on seed 5: set name -> generator suffix of the task
HELD_OUT = {"unseen forms": "unseen", "unseen forms B": "unseen-b", "unseen forms C": "unseen-c",
            "unseen forms D": "unseen-d", "unseen forms E": "unseen-e"}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="a run trained on the task's training generator")
    p.add_argument("--task", choices=["complaints", "policy-pages"], default="complaints")
    p.add_argument("--test", help="the run's own test split (default: 48 fresh records, seed 2)")
    p.add_argument("--unseen", type=int, default=240, help="held-out-form records (seed 5)")
    p.add_argument("--no-test", action="store_true", help="score the held-out forms only")
    p.add_argument("--sets", nargs="+", choices=list(HELD_OUT), default=list(HELD_OUT),
                   help="the held-out sets to score (default: all)")  # fmt: skip
    p.add_argument("--grounded-only", action="store_true", help="skip the free decoding")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--shapes", action="store_true", help="also decode without the shapes")
    p.add_argument("--relearn-from", help="the run's training records: learn the schema anew")
    p.add_argument("--workdir", default=str(RESULTS / "work" / "unseen"))
    args = p.parse_args()

    from slmtune.cli import _quiet_libraries
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.run.answer import verbatim_paths, without_verbatim
    from slmtune.run.schema import run_schema

    _quiet_libraries()
    work = Path(args.workdir) / args.task
    work.mkdir(parents=True, exist_ok=True)
    sets = {}
    for name in args.sets:
        generator = HELD_OUT[name]
        sets[name] = work / f"{generator}.jsonl"
        write_jsonl(synthesize(f"{args.task}-{generator}", args.unseen, seed=5), sets[name])
    test = Path(args.test) if args.test else work / "test.jsonl"
    if not args.test:
        write_jsonl(synthesize(args.task, 48, seed=2), test)
    sets = sets if args.no_test else {"test split": test, **sets}

    schema = _relearned(args.relearn_from) if args.relearn_from else run_schema(args.run)
    schemas = {"grounded": schema}
    if args.shapes:
        schemas["unshaped"] = _without(schema, "shape")
    if not args.grounded_only:
        schemas["free"] = without_verbatim(schema)
    results: dict = {}
    for set_name, path in sets.items():
        for mode, mode_schema in schemas.items():
            scored = _score(args, work, path, mode, mode_schema, verbatim_paths(schema))
            results.setdefault(set_name, {})[mode] = scored
            print(set_name, mode, json.dumps(results[set_name][mode]["overall"]), flush=True)

    out = {
        "benchmark": f"{args.task}: own test split vs held-out forms, grounded vs free decoding",
        "run": str(args.run),
        "schema": f"learned anew from {args.relearn_from}" if args.relearn_from else "the run's",
        "run_schema_verbatim_fields": [
            k for k, v in schema["properties"].items() if v.get("verbatim")
        ],
        "shaped_fields": {k: v["shape"] for k, v in schema["properties"].items() if "shape" in v},
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"unseen_{args.task}_{Path(args.run).name}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def _relearned(train: str) -> dict:
    """The schema training learns from these records now (train.py: answers and inputs)."""
    from slmtune.data.load import load_examples
    from slmtune.data.types import last_user_text
    from slmtune.run import infer_schema

    examples = load_examples(train).examples
    sources = [last_user_text(e.prompt_messages) or "" for e in examples]
    return infer_schema([e.answer or "" for e in examples], sources)


def _without(node, keyword: str):
    if isinstance(node, dict):
        return {k: _without(v, keyword) for k, v in node.items() if k != keyword}
    return [_without(v, keyword) for v in node] if isinstance(node, list) else node


def _score(args, work: Path, data: Path, mode: str, schema: dict, copied: tuple) -> dict:
    """Evaluate one decoding on one set; `copied`: the run's verbatim fields, checked in
    every answer (free decoding included)."""
    from slmtune.config import DecodeConfig
    from slmtune.evaluate.evaluate import evaluate
    from slmtune.evaluate.metrics import score
    from slmtune.run.answer import parse_json_answer, ungrounded

    schema_file = work / f"{mode}_schema.json"
    schema_file.write_text(json.dumps(schema, ensure_ascii=False))
    cfg = DecodeConfig(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                       schema_file=str(schema_file))  # fmt: skip
    out_dir = work / f"eval_{data.stem}_{mode}"
    start = time.time()
    evaluate(args.run, str(data), str(out_dir), cfg, quiet=True)
    seconds = time.time() - start
    rows = [json.loads(x) for x in (out_dir / "predictions.jsonl").read_text().splitlines()]
    records = [json.loads(x) for x in data.read_text().splitlines()]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[record.get("form", "all")].append(i)

    def summary(idx: list[int]) -> dict:
        m = score([rows[i]["reference"] for i in idx], [rows[i]["prediction"] for i in idx])
        invented = sum(
            bool(ungrounded(parse_json_answer(rows[i]["prediction"])[0], rows[i]["input"], copied))
            for i in idx
        )
        return {
            "n": len(idx),
            "field_accuracy": m["field_accuracy"],
            "parse_rate": m["parse_rate"],
            "per_field": {k: v["accuracy"] for k, v in m["per_field"].items()},
            "answers_with_invented_value": invented,
        }

    every = list(range(len(rows)))
    result = {"overall": summary(every), "seconds": round(seconds, 1)}
    if len(groups) > 1:
        result["per_form"] = {form: summary(idx) for form, idx in sorted(groups.items())}
    return result


if __name__ == "__main__":
    main()
