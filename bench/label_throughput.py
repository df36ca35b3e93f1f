"""How fast `slmtune label` drives a teacher: records/s against a local teacher that takes a
fixed time per answer (an oracle answering gold labels after --latency seconds, standing in
for a big model's API), at several --concurrency settings, same records each time.

The ideal is concurrency / latency records/s; the gap is slmtune's own overhead (HTTP client,
validation, grounding check, in-order writing with fsync). Writes
bench/results/label_throughput.json.

Usage: python bench/label_throughput.py [--records 400] [--latency 0.2] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))  # tests.serve.harness: the loopback server the tests use too


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=400)
    p.add_argument("--latency", type=float, default=0.2, help="seconds per teacher answer")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--workdir", default=str(RESULTS / "work" / "label_throughput"))
    args = p.parse_args()

    from slmtune.config import LabelConfig
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.label.label import label
    from slmtune.label.oracle import oracle_app
    from tests.serve.harness import Server

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    records = synthesize("complaints-unseen", args.records, seed=21)
    raw = work / "raw.jsonl"
    write_jsonl([{"id": i, "text": r["instruction"]} for i, r in enumerate(records)], raw)
    server = Server(
        oracle_app({r["instruction"]: r["output"] for r in records}, delay=args.latency)
    )
    rows = []
    try:
        for concurrency in args.concurrency:
            cfg = LabelConfig(teacher_url=f"{server.url}/v1", teacher_model="oracle",
                              system=records[0]["system"], concurrency=concurrency)  # fmt: skip
            out = work / f"labelled_c{concurrency}.jsonl"
            summary = label(str(raw), str(out), cfg, overwrite=True, quiet=True)
            ideal = concurrency / args.latency
            rows.append({
                "concurrency": concurrency,
                "records_per_second": summary["records_per_second"],
                "ideal_records_per_second": round(ideal, 2),
                "share_of_ideal": round(summary["records_per_second"] / ideal, 3),
                "labelled": summary["labelled"],
                "rejected": summary["rejected"],
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    result = {
        "benchmark": "label throughput against a local teacher with a fixed answer time",
        "records": args.records,
        "teacher_latency_s": args.latency,
        "results": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "label_throughput.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
