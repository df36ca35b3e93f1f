"""Quality on real data: CLUENER2020 fine-grained Chinese NER, trained and scored end to end.

Converts the public train/dev files (`slmtune data convert --from cluener`), fine-tunes the
embedded gemma-3-270m with LoRA on the first --train records, then answers --dev records of
the dev split twice with the same model, the same records and the same batches:
  grounded    the run's learned schema (every entity list marked verbatim: each entity is
              copied from the sentence while decoding)
  free        the same schema with the verbatim marks removed (JSON grammar only)
and scores entity micro-F1: a (type, entity) pair of a sentence is right when it is in the
gold set (the CLUENER metric; BiLSTM-CRF 0.700, BERT-base 0.788). Also: F1 per type, parse
rate, answers with an invented entity, training minutes. Writes bench/results/quality_cluener.json.

Data: bring train.json / dev.json with the fetch tool from a public mirror (e.g. the repository
plum-Yin/GlobalPointer_pytorch, datasets/cluener/) and pass the folder as --cluener.

Usage: python bench/quality.py --cluener DIR [--train 1600] [--dev 1343] [--epochs 1]
       [--modes grounded,free]
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
    p.add_argument("--cluener", required=True, help="folder with CLUENER2020 train.json, dev.json")
    p.add_argument("--train", type=int, default=1600, help="training sentences (from the start)")
    p.add_argument("--dev", type=int, default=1343, help="dev sentences scored (all: 1343)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--augment", type=int, default=0, help="re-laid-out copies (measured: 0)")
    p.add_argument("--batch-size", type=int, default=32, help="answers decoded at once")
    p.add_argument("--modes", default="grounded,free", help="decodings scored: grounded, free")
    p.add_argument("--workdir", default=str(RESULTS / "work" / "cluener"))
    args = p.parse_args()

    from slmtune.cli import _quiet_libraries
    from slmtune.config import DecodeConfig
    from slmtune.data.convert import convert
    from slmtune.demo import demo_recipe
    from slmtune.evaluate.evaluate import evaluate
    from slmtune.run import RunDir
    from slmtune.run.answer import without_verbatim
    from slmtune.run.schema import run_schema
    from slmtune.train.train import train

    _quiet_libraries()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", args.train), ("dev", args.dev)):
        convert(str(Path(args.cluener) / f"{split}.json"), str(work / f"{split}.all.jsonl"),
                to="alpaca", source="cluener")  # fmt: skip
        lines = (work / f"{split}.all.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (work / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")

    run_dir = work / f"run_{args.train}_{args.epochs:g}ep_r{args.lora_r}" + (
        f"_aug{args.augment}" if args.augment else ""
    )
    start = time.time()
    if not RunDir(run_dir).is_finished():
        train(demo_recipe(work / "train.jsonl", run_dir, args.epochs, args.lr, args.lora_r,
                          augment=args.augment))  # fmt: skip
    train_minutes = (time.time() - start) / 60
    summary = json.loads(RunDir(run_dir).summary.read_text())

    schema = run_schema(run_dir)
    free = without_verbatim(schema)
    (work / "free_schema.json").write_text(json.dumps(free, ensure_ascii=False))
    (work / "grounded_schema.json").write_text(json.dumps(schema, ensure_ascii=False))
    results = {}
    for name in args.modes.split(","):
        cfg = DecodeConfig(
            batch_size=args.batch_size,
            max_new_tokens=256,
            schema_file=str(work / f"{name}_schema.json"),
        )
        t0 = time.time()
        runs = evaluate(str(run_dir), str(work / "dev.jsonl"), str(work / f"eval_{name}"), cfg,
                        quiet=True)  # fmt: skip
        m = next(iter(runs.values()))
        results[name] = {
            "entity_f1": m["item_f1"],
            "entity_precision": m["item_precision"],
            "entity_recall": m["item_recall"],
            "f1_per_type": {k: v["item_f1"] for k, v in m["per_field"].items()},
            "parse_rate": m["parse_rate"],
            "answers_with_invented_entity": _invented(work / f"eval_{name}", schema),
            "records_per_second": round(args.dev / (time.time() - t0), 3),
        }
        print(name, json.dumps(results[name], ensure_ascii=False), flush=True)

    out = {
        "benchmark": "CLUENER2020 dev, entity micro-F1 (set of (type, entity) pairs per sentence)",
        "model": "gemma-3-270m (embedded), LoRA",
        "train_sentences": args.train,
        "dev_sentences": args.dev,
        "epochs": args.epochs,
        "lr": args.lr,
        "lora_r": args.lora_r,
        "augment": args.augment,
        "train_minutes": round(train_minutes, 1),
        "train_tokens_per_second": summary.get("tokens_per_second"),
        "machine": "2 CPU cores",
        "results": results,
        "anchors": {"BiLSTM-CRF": 0.700, "BERT-base": 0.788, "RoBERTa-wwm-large": 0.804},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"quality_cluener_{args.train}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {path}")


def _invented(eval_dir: Path, schema: dict) -> int:
    """Answers with an entity that is not in their sentence (the verbatim check)."""
    from slmtune.run import parse_json_answer
    from slmtune.run.answer import ungrounded, verbatim_paths

    paths = verbatim_paths(schema)
    rows = [json.loads(x) for x in (eval_dir / "predictions.jsonl").read_text().splitlines()]
    return sum(bool(ungrounded(parse_json_answer(r["prediction"])[0], r["input"], paths))
               for r in rows)  # fmt: skip


if __name__ == "__main__":
    main()
