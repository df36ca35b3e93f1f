"""Does `train --augment` pay on texts the model never saw? Same data, same evaluation sets.

Each variant trains from the base with the demo's recipe (slmtune.demo.demo_recipe) on the
same --train records of the task's training generator, then is scored, grounded, on the same
records: its own test split (48, seed 2) and the held-out forms sets A, B and C (--unseen
records each, seed 5; layouts written apart from the training generator, never trained on).
Variants, given as AUGMENT:EPOCHS (epochs over the augmented set):
  0:1     the demo recipe as it is (the baseline)
  1:0.5   one re-laid-out copy per record, the same optimizer steps as the baseline
  1:1     one copy, one epoch over both: twice the steps
  0:2     no copies, two epochs: the same steps as 1:1 (the compute control for it)
--train-option KEY=VALUE (repeatable) changes one training setting of the recipe for every
variant (a TrainConfig field: lr=2e-4, lora_dropout=0.1, lora_r=32, ...), to study the recipe
itself on the held-out forms.
Writes bench/results/augment_<task>.json: field accuracy per set and per form, per field,
parse rate, answers with an invented value, training seconds and steps, the settings changed.

Usage: python bench/augment_study.py --task complaints [--variants 0:1 1:0.5 1:1 0:2]
       [--train 480] [--unseen 120] [--tag NAME] [--train-option lr=2e-4 ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from unseen import HELD_OUT, _score  # bench/unseen.py: one run scored per set and form

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=["complaints", "policy-pages"], default="complaints")
    p.add_argument("--variants", nargs="+", default=["0:1", "1:0.5", "1:1", "0:2"])
    p.add_argument("--train", type=int, default=480, help="training-generator records")
    p.add_argument("--train-seed", type=int, default=1,
                   help="the training generator's seed: another draw of the same recipe, to "
                   "see how far two runs of one recipe differ")  # fmt: skip
    p.add_argument("--unseen", type=int, default=120, help="held-out-form records (seed 5)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=None)
    p.add_argument("--workdir", default=str(RESULTS / "work" / "augment"))
    p.add_argument("--tag", default="", help="results go to augment_<task>[_TAG].json")
    p.add_argument(
        "--dtype",
        choices=["auto", "float32", "bfloat16"],
        default="auto",
        help="training compute dtype (auto: bf16 where the CPU has it); float32 to compare "
        "with rows measured on a CPU without bf16",
    )
    p.add_argument("--train-option", action="append", default=[], metavar="KEY=VALUE",
                   help="one training setting changed from the recipe (a TrainConfig field)")  # fmt: skip
    args = p.parse_args()
    options = _options(p, args.train_option)

    from slmtune.cli import _quiet_libraries
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.demo import demo_recipe
    from slmtune.run import RunDir
    from slmtune.run.answer import verbatim_paths
    from slmtune.run.schema import run_schema
    from slmtune.train.train import train

    _quiet_libraries()
    code = _commit()  # now: the code the study trains and scores with
    study = args.task + (f"_{args.tag}" if args.tag else "")
    work = Path(args.workdir) / study
    work.mkdir(parents=True, exist_ok=True)
    data = {
        "train": (args.task, args.train, args.train_seed),
        "test split": (args.task, 48, 2),
        **{name: (f"{args.task}-{g}", args.unseen, 5) for name, g in HELD_OUT.items()},
    }
    files = {}
    for name, (generator, n, seed) in data.items():
        files[name] = work / f"{name.replace(' ', '_')}.jsonl"
        write_jsonl(synthesize(generator, n, seed=seed), files[name])

    earlier = RESULTS / f"augment_{study}.json"  # variants scored before stay, re-run ones update
    results = json.loads(earlier.read_text())["results"] if earlier.exists() else {}
    for variant in args.variants:
        copies, epochs = variant.split(":")
        run = work / f"run_aug{copies}_ep{epochs}"
        scores = work / f"scores_{run.name}"
        scores.mkdir(exist_ok=True)
        if not RunDir(run).is_finished():
            cfg = demo_recipe(files["train"], run, epochs=float(epochs))
            update = {"augment": int(copies), "dtype": args.dtype, **options}
            train(type(cfg).model_validate({**cfg.model_dump(), **update}))
        summary = json.loads(RunDir(run).summary.read_text())
        schema = run_schema(run)
        scoring = argparse.Namespace(run=str(run), batch_size=args.batch_size,
                                     max_new_tokens=args.max_new_tokens)  # fmt: skip
        scored = {
            name: _score(scoring, scores, files[name], "grounded", schema, verbatim_paths(schema))
            for name in ("test split", *HELD_OUT)
        }
        results[variant] = {
            "augment": int(copies),
            "epochs": float(epochs),
            "steps": summary["steps"],
            "train_seconds": summary["seconds"],
            "bf16": summary["bf16"],
            "train_seed": args.train_seed,
            "train_options": options,
            "code": code,
            **scored,
        }
        print(variant, {k: v["overall"]["field_accuracy"] for k, v in scored.items()}, flush=True)
        path = _write(args, study, code, results)  # after every variant: a stop keeps them
    print(f"wrote {path}")


def _options(p: argparse.ArgumentParser, given: list[str]) -> dict[str, str]:
    """--train-option KEY=VALUE pairs, each KEY a TrainConfig field (pydantic parses VALUE)."""
    from slmtune.config import TrainConfig

    options = {}
    for item in given:
        key, sep, value = item.partition("=")
        if not sep or key not in TrainConfig.model_fields:
            p.error(f"--train-option {item!r}: want KEY=VALUE, KEY a training setting such as "
                    "lr, lora_r, lora_alpha, lora_dropout, lora_targets, weight_decay")  # fmt: skip
        options[key] = value
    try:
        TrainConfig.model_validate({"data": "-", **options})
    except ValueError as e:  # pydantic's ValidationError names the setting and the value
        p.error(f"--train-option: {e}")
    return options


def _write(args, study: str, code: str, results: dict) -> Path:
    out = {
        "benchmark": f"{args.task}: train --augment, scored grounded on the test split and "
        f"on held-out forms ({', '.join(HELD_OUT)}); demo recipe, same records for every variant",
        "train_records": args.train,
        "unseen_records": args.unseen,
        "machine": "2 CPU cores",
        "code": code,
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"augment_{study}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return path


def _commit() -> str:
    """The commit measured (with '+changes' when the tree had uncommitted ones)."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout

    return git("rev-parse", "--short", "HEAD").strip() + (
        "+changes" if git("status", "-s", "slmtune") else ""
    )


if __name__ == "__main__":
    main()
