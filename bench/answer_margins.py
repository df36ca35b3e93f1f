"""Where does a run hesitate on the reference answers? Teacher-forced, token by token.

For each record of a data file (a run's test split, a held-out set), the reference answer is
fed after the prompt, rendered exactly as training renders it, and at every answer token we
read the probability the run gives the reference's token. A token the run would not pick
greedily (another scores higher) is where a greedy answer leaves the reference.

Line breaks inside a verbatim value get a count of their own: at a line break the run decides
whether the value goes on (the reference's token starts the JSON escape `\\n`) or ends there
(the reference's token does not, while the run's favourite starts `\\n`). On crawled pages
that is where a body is cut short or runs into the footer.

Usage: python bench/answer_margins.py RUN DATA [--limit N] --tag NAME
Writes bench/results/margins_<NAME>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="run directory")
    p.add_argument("data", help="records with reference answers (alpaca JSONL)")
    p.add_argument("--limit", type=int, default=None, help="first N records")
    p.add_argument("--tag", required=True, help="results go to margins_<TAG>.json")
    args = p.parse_args()

    import torch

    from slmtune.cli import _quiet_libraries
    from slmtune.data.load import load_examples
    from slmtune.run.open import open_run

    _quiet_libraries()
    opened = open_run(args.run)
    examples = load_examples(args.data).examples[: args.limit]
    records, breaks, ends = [], [], []
    for ex in examples:
        rendered = opened.renderer.render(opened.prompt(ex.messages[:-1]) + ex.messages[-1:])
        ids, n = torch.tensor([rendered.input_ids]), len(rendered.input_ids)
        first = next(t for t, label in enumerate(rendered.labels) if label != -100)
        with torch.no_grad():  # logits only where an answer token is predicted
            logits = opened.model(ids, logits_to_keep=n - first + 1).logits[0]
        probs = torch.softmax(logits.float(), -1)  # row i predicts token first + i
        weak = []
        for t in range(first, n):
            if rendered.labels[t] == -100:
                continue
            gold, top = rendered.input_ids[t], int(probs[t - first].argmax())
            p_gold = probs[t - first, gold].item()
            text = opened.tokenizer.decode([gold])
            top_text = opened.tokenizer.decode([top])
            if "\\" in text:  # the reference goes on past a line break (or another escape)
                breaks.append(p_gold)
            elif "\\" in top_text:  # the reference ends where the run would go on
                ends.append(p_gold)
            if top != gold:
                before = opened.tokenizer.decode(rendered.input_ids[max(0, t - 8) : t])
                weak.append({"p": round(p_gold, 3), "reference": text, "run": top_text,
                             "after": before})  # fmt: skip
        records.append({"source": ex.source, "not_greedy": weak})
        print(f"{len(records)}/{len(examples)}", end="\r", flush=True)
    summary = {
        "records": len(records),
        "records_with_a_token_not_greedy": sum(bool(r["not_greedy"]) for r in records),
        "goes_on_at_a_line_break": _spread(breaks),
        "ends_where_the_run_would_go_on": _spread(ends),
    }
    print(json.dumps(summary, indent=1))
    out = RESULTS / f"margins_{args.tag}.json"
    out.write_text(
        json.dumps(
            {"benchmark": __doc__.splitlines()[0], "run": args.run, "data": args.data,
             "machine": "2 CPU cores", "summary": summary, "records": records},
            indent=1, ensure_ascii=False,
        ) + "\n"
    )  # fmt: skip
    print(f"wrote {out}")


def _spread(ps: list[float]) -> dict:
    """How sure the run is of the reference at these points: count, how many it gives less
    than one half (above one half a token is always the greedy pick), median, lowest."""
    return {
        "points": len(ps),
        "reference_below_half": sum(p < 0.5 for p in ps),
        "median": round(statistics.median(ps), 3) if ps else None,
        "min": round(min(ps), 3) if ps else None,
    }


if __name__ == "__main__":
    main()
