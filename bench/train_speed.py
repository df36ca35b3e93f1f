"""Training speed: the seeds' recipe vs `slmtune train`, same model, data and steps, one run.

Each variant runs in its own process (so peak RSS is its own) on identical rendered data:
the same (input_ids, labels) from slmtune's renderer, the same seed, the same LoRA config and
the same number of optimizer steps. Only the implementation differs:

  seeds    HF Trainer + PEFT LoRA (r=8, a=32, all linear), DataCollatorForSeq2Seq(padding=True),
           gradient checkpointing, full-vocabulary logits, fp32   (NOTES.md, "the seeds' recipe")
  slmtune  `slmtune train` defaults: length-grouped batches, trained-position logits, no
           checkpointing, bf16 autocast where the CPU has it, frozen base weights in bf16
  slmtune --no-group-by-length   the seeds' batch order: checks the loss agrees step by step
  + one ablation per lever (--levers) to show what each pays.

Tokens are counted as the trainers see them (real tokens, no padding).

Prints a table and writes bench/results/train_speed.json.
Usage: python bench/train_speed.py [--records 256] [--steps 4] [--levers]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

VARIANTS = {
    "seeds": {},
    "slmtune": {},
    "slmtune --no-group-by-length": {"group_by_length": False},  # same batches as seeds
    "slmtune --fp32-base": {"bf16_base": False},
    "slmtune --dtype float32": {"dtype": "float32"},
    "slmtune --packing": {"packing": True},
    "slmtune --full-logits": {"labels_only_logits": False},
    "slmtune --gradient-checkpointing": {"gradient_checkpointing": True},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=256)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--grad-accum", type=int, default=4)
    p.add_argument("--levers", action="store_true", help="also run one ablation per speed lever")
    p.add_argument("--variant", help=argparse.SUPPRESS)  # internal: run one variant in-process
    p.add_argument("--workdir", default=str(RESULTS / "work"))
    args = p.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    prepare_data(work, args.records)
    peak = matmul_peak()
    names = list(VARIANTS) if args.levers else ["seeds", "slmtune", "slmtune --no-group-by-length"]
    results = {}
    for name in names:
        print(f"--- {name}", flush=True)
        cmd = [
            sys.executable,
            __file__,
            "--variant",
            name,
            "--workdir",
            str(work),
            "--records",
            str(args.records),
            "--steps",
            str(args.steps),
            "--batch-size",
            str(args.batch_size),
            "--grad-accum",
            str(args.grad_accum),
        ]
        out = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        if out.returncode != 0:
            print(out.stderr[-3000:])
            raise SystemExit(f"variant {name} failed")
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[name]), flush=True)
    report(results, peak, args)


def prepare_data(work: Path, n: int) -> None:
    sys.path.insert(0, str(ROOT))
    from slmtune.data.synth import synthesize, write_jsonl

    write_jsonl(synthesize("complaints", n, seed=0), work / "train.jsonl")


def matmul_peak() -> dict:
    """The physical limit: a 2048^3 matmul in fp32 and bf16, GFLOP/s."""
    import torch

    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(2048, 2048, dtype=dtype)
        b = torch.randn(2048, 2048, dtype=dtype)
        a @ b
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < 2.0:
            a @ b
            n += 1
        out[str(dtype).removeprefix("torch.")] = round(
            2 * 2048**3 * n / (time.perf_counter() - start) / 1e9, 1
        )
    return out


def run_variant(args) -> dict:
    import resource

    import slmtune  # noqa: F401
    from slmtune.cli import _quiet_libraries

    _quiet_libraries()
    from slmtune.data.load import load_examples
    from slmtune.models import load_model, resolve_model
    from slmtune.run import model_renderer

    work = Path(args.workdir)
    path = resolve_model("gemma-3-270m", quiet=True)
    tokenizer, _, renderer = model_renderer(path, max_length=1024)  # as `slmtune train` does
    rows = [renderer.render(e.messages) for e in load_examples(work / "train.jsonl").examples]
    if args.variant == "seeds":
        model = load_model(path)
        start = time.time()
        trainer = seeds_trainer(model, tokenizer, rows, args, work)
    else:
        from slmtune.train.train import _base_dtype

        cfg = slmtune_config(args, work, VARIANTS[args.variant])
        model = load_model(path, dtype=_base_dtype(cfg))  # as `slmtune train` loads it
        start = time.time()
        trainer = slmtune_trainer(cfg, model, tokenizer, rows, work)
    trainer.train()
    seconds = time.time() - start
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    tokens, trained = trainer.tokens_seen, trainer.trained_tokens_seen
    n_body = sum(
        p.numel() for n, p in model.named_parameters() if "embed" not in n and "lora" not in n
    )
    hidden, vocab = model.config.hidden_size, model.config.vocab_size
    # forward 2N + input-gradient backward 2N per token (frozen weights need no weight grad);
    # LM head (frozen, tied) 2VH forward + 2VH backward per trained token.
    flops = 4 * n_body * tokens + 4 * vocab * hidden * trained
    return {
        "steps": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1),
        "trained_tokens_per_second": round(trained / seconds, 1),
        "final_loss": round(losses[-1], 4),
        "losses": [round(x, 4) for x in losses],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "achieved_gflops": round(flops / seconds / 1e9, 1),
    }


def _lora(model):
    from peft import LoraConfig, get_peft_model

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    cfg = LoraConfig(
        r=8, lora_alpha=32, lora_dropout=0.1, target_modules=targets, task_type="CAUSAL_LM"
    )
    return get_peft_model(model, cfg)


def _args(work: Path, args, **kw):
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(work / "out"),
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        learning_rate=1e-4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        seed=42,
        **kw,
    )


def seeds_trainer(model, tokenizer, rows, args, work):
    """NOTES.md: Trainer + PEFT, DataCollatorForSeq2Seq(padding=True), checkpointing, fp32."""
    from transformers import DataCollatorForSeq2Seq, Trainer

    class CountingTrainer(Trainer):
        """The stock Trainer; it only counts real (non-pad) and trained tokens it was fed."""

        tokens_seen = trained_tokens_seen = 0

        def training_step(self, model, inputs, *a, **kw):
            self.tokens_seen += int(inputs["attention_mask"].sum())
            self.trained_tokens_seen += int((inputs["labels"][:, 1:] != -100).sum())
            return super().training_step(model, inputs, *a, **kw)

    model.enable_input_require_grads()  # the seeds' notebooks do this for checkpointing + LoRA
    model = _lora(model)
    data = [
        {"input_ids": r.input_ids, "attention_mask": [1] * len(r.input_ids), "labels": r.labels}
        for r in rows
    ]
    return CountingTrainer(
        model=model,
        args=_args(work, args, gradient_checkpointing=True),
        train_dataset=data,
        data_collator=DataCollatorForSeq2Seq(tokenizer=tokenizer, padding=True),
    )


def slmtune_config(args, work: Path, overrides: dict):
    from slmtune.config import TrainConfig

    return TrainConfig(
        data="-",
        out=str(work / "out"),
        max_steps=args.steps,
        batch_size=args.batch_size,
        grad_accum=args.grad_accum,
        lora_targets="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj",
        save_steps=10**6,
        **overrides,
    )


def slmtune_trainer(cfg, model, tokenizer, rows, work: Path):
    from slmtune.train.train import _build_trainer, attach_method

    model = attach_method(model, cfg)
    return _build_trainer(cfg, work / "out", model, tokenizer, rows, [])


def report(results: dict, peak: dict, args) -> None:
    seeds, ours = results["seeds"], results["slmtune"]
    same = results.get("slmtune --no-group-by-length", ours)
    summary = {
        "setup": {
            "records": args.records,
            "steps": args.steps,
            "batch_size": args.batch_size,
            "grad_accum": args.grad_accum,
            "model": "gemma-3-270m",
            "cpu_threads": os.cpu_count(),
        },
        "matmul_peak_gflops": peak,
        "results": results,
        "speedup_tokens_per_second": round(
            ours["tokens_per_second"] / seeds["tokens_per_second"], 2
        ),
        "peak_rss_ratio": round(ours["peak_rss_mb"] / seeds["peak_rss_mb"], 2),
        # same batches as the seeds' run: the maths must agree (bf16 + dropout draws differ)
        "same_batches_max_loss_diff": round(
            max(abs(a - b) for a, b in zip(same["losses"], seeds["losses"], strict=True)), 4
        ),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_speed.json").write_text(json.dumps(summary, indent=2))
    print(
        f"\n{'variant':<36}{'tok/s':>8}{'trained tok/s':>15}{'peak RSS MB':>13}{'final loss':>12}{'GFLOP/s':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:<36}{r['tokens_per_second']:>8}{r['trained_tokens_per_second']:>15}"
            f"{r['peak_rss_mb']:>13}{r['final_loss']:>12}{r['achieved_gflops']:>9}"
        )
    print(f"\nmatmul peak GFLOP/s: {peak}")
    print(
        f"speed-up slmtune / seeds: {summary['speedup_tokens_per_second']}x tokens/s; "
        f"peak RSS ratio {summary['peak_rss_ratio']}; max per-step loss difference on the "
        f"seeds' batches {summary['same_batches_max_loss_diff']}"
    )


if __name__ == "__main__":
    main()
