"""`make demo`: the whole loop on the embedded model, on a fresh CPU machine.

synthesise complaint data -> evaluate the base model -> LoRA fine-tune -> evaluate again ->
before/after tables and HTML reports, on the test split and on held-out forms (another
generator's layouts: what the model meets on real texts). Answers are capped at 160 tokens to
keep the base model's rambling short. Sizes are chosen to fit ~20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)


def demo_recipe(
    data, out, epochs: float = 1.0, lr: float = 4e-4, lora_r: int = 16, augment: int = 0
):
    """The demo's training settings (README, "What make demo does"); benchmarks reuse them.
    No re-laid-out copies: on the widened training generator they cost on both held-out sets
    (bench/results/augment_complaints_wide.json)."""
    from slmtune.config import TrainConfig

    return TrainConfig(
        data=str(data),
        out=str(out),
        epochs=epochs,
        augment=augment,
        lr=lr,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        lora_dropout=0.0,
        batch_size=4,
        grad_accum=2,
        warmup_ratio=0.05,
        save_steps=100_000,  # no checkpoints: a short run
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="where data, run and report go")
    parser.add_argument("--train", type=int, default=480, help="training records")
    parser.add_argument("--test", type=int, default=48, help="held-out test records")
    parser.add_argument("--unseen", type=int, default=48, help="records in held-out forms (set B)")
    parser.add_argument("--epochs", type=float, default=1.0, help="over records (+ copies)")
    parser.add_argument("--augment", type=int, default=0, help="re-laid-out copies per record")
    parser.add_argument("--lr", type=float, default=4e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--fresh", action="store_true", help="delete --out first")
    args = parser.parse_args(argv)

    from slmtune.cli import _quiet_libraries
    from slmtune.config import DecodeConfig
    from slmtune.data.synth import synthesize, write_jsonl
    from slmtune.evaluate.evaluate import evaluate
    from slmtune.models import resolve_model
    from slmtune.run import RunDir
    from slmtune.train.train import train

    _quiet_libraries()
    out = Path(args.out)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    start = time.time()

    def step(msg: str) -> None:
        print(f"\n==> [{time.time() - start:5.0f} s] {msg}", flush=True)

    step("1/6 preparing the embedded model gemma-3-270m (one-time, ~1 min)")
    resolve_model("gemma-3-270m")

    step(f"2/6 synthesising complaint data: {args.train} train / {args.test} test records")
    data = out / "data"
    write_jsonl(synthesize("complaints", args.train, seed=1), data / "train.jsonl")
    write_jsonl(synthesize("complaints", args.test, seed=2), data / "test.jsonl")
    write_jsonl(synthesize("complaints-unseen-b", args.unseen, seed=5), data / "unseen.jsonl")

    run_dir = out / "run"
    copies = f" and {args.augment} re-laid-out copies of each" if args.augment else ""
    step(f"3/6 fine-tuning with LoRA r={args.lora_r} on the records{copies}, "
         f"{args.epochs:g} epoch(s)")  # fmt: skip
    if RunDir(run_dir).is_finished():
        print(f"(reusing the finished run in {run_dir}; pass --fresh to retrain)")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        recipe = demo_recipe(data / "train.jsonl", run_dir, args.epochs, args.lr, args.lora_r,
                             args.augment)  # fmt: skip
        train(recipe)

    # no token limit given: each answer may take the most a schema-valid one can for its
    # input, so none is cut (a base model copying a long span once ran past a fixed 160)
    step("4/6 evaluating base vs fine-tuned on the held-out test split")
    evaluate(str(run_dir), str(data / "test.jsonl"), str(out / "report"),
             DecodeConfig(batch_size=16), with_base=True, quiet=False)  # fmt: skip

    step("5/6 ... and on held-out forms the training generator never produces")
    print("(chat exports, letters, web-form posts, voicemail transcripts: held-out set B)")
    evaluate(str(run_dir), str(data / "unseen.jsonl"), str(out / "report_unseen"),
             DecodeConfig(batch_size=16), with_base=True, quiet=False)  # fmt: skip

    step("6/6 done")
    print(f"\nHTML reports: {(out / 'report' / 'report.html').resolve()}")
    print(f"              {(out / 'report_unseen' / 'report.html').resolve()}")
    print(f"total wall time: {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
