"""`slmtune train`: config -> model -> data -> render -> train -> save -> summary."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import torch

from slmtune.chat import ChatRenderer, Rendered
from slmtune.config import TrainConfig, dump_config
from slmtune.data.augment import augment
from slmtune.data.load import load_examples
from slmtune.data.types import Example
from slmtune.errors import ConfigError, DataError, Problem
from slmtune.models import cpu_has_bf16, load_model, resolve_model
from slmtune.run import RunDir, examples_schema, model_renderer, save_run_files, save_schema
from slmtune.run.open import model_type
from slmtune.train.batching import Collator, RenderedDataset
from slmtune.train.callbacks import JsonlLogCallback, ProgressCallback, plot_loss
from slmtune.train.trainer import SlmTrainer, peak_memory_mb


def train(cfg: TrainConfig) -> Path:
    """Fine-tune `cfg.model` on `cfg.data`; returns the run directory."""
    run_dir = _prepare_run_dir(cfg)
    if is_main_process():
        _print_config(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    model_path = resolve_model(cfg.model)
    tokenizer, template, renderer = model_renderer(
        model_path, cfg.template, cfg.max_length, cfg.last_turn_only
    )

    train_examples, eval_examples = _load_data(cfg)
    if cfg.augment:
        extra = augment(train_examples, cfg.augment, seed=cfg.seed)
        if is_main_process():
            print(f"augment: {len(extra)} re-laid-out copies of {len(train_examples)} records")
        train_examples = train_examples + extra
    train_rows = render_examples(train_examples, renderer, "training")
    eval_rows = render_examples(eval_examples, renderer, "eval") if eval_examples else []
    if is_main_process():
        print(f"template: {template} | {len(train_rows)} training examples, {len(eval_rows)} eval")

    model = load_model(model_path, dtype=_base_dtype(cfg))
    model = attach_method(model, cfg)

    trainer = _build_trainer(cfg, run_dir, model, tokenizer, train_rows, eval_rows)
    start = time.time()
    result = trainer.train(resume_from_checkpoint=_last_checkpoint(run_dir) if cfg.resume else None)
    seconds = time.time() - start
    if eval_rows:
        trainer.evaluate()
    if trainer.accelerator.num_processes > 1:
        # One line per rank: under DDP every rank must end with identical weights.
        print(
            f"[rank {trainer.accelerator.process_index}] steps {trainer.state.global_step} "
            f"weights-checksum {_trainable_checksum(trainer.model):.6f}",
            flush=True,
        )

    if trainer.is_world_process_zero():
        save_schema(run_dir.path, examples_schema(train_examples))
        save_run_files(
            run_dir,
            model=trainer.model,
            tokenizer=tokenizer,
            meta={
                "base_model": str(model_path),
                "model_ref": cfg.model,
                "model_type": model_type(model_path),
                "template": template,
                "method": cfg.method,
                "max_length": cfg.max_length,
                "last_turn_only": cfg.last_turn_only,
                "system_prompt": common_system_prompt(train_examples),
            },
        )
        summary = _write_summary(run_dir, trainer, result, seconds)
        print(json.dumps(summary, indent=2))
    if trainer.accelerator.num_processes > 1:
        # Every rank waits for rank 0's save, then leaves the process group: a rank that exits
        # with gloo's threads still alive aborts ("terminate called without an active exception").
        trainer.accelerator.wait_for_everyone()
        torch.distributed.destroy_process_group()
    return run_dir.path


# -- steps ------------------------------------------------------------------------------


def is_main_process() -> bool:
    """Rank 0 under torchrun / accelerate launch (RANK is set before any process group)."""
    return int(os.environ.get("RANK", "0")) == 0


def _trainable_checksum(model) -> float:
    return float(
        sum(p.detach().double().abs().sum() for p in model.parameters() if p.requires_grad)
    )


def _prepare_run_dir(cfg: TrainConfig) -> RunDir:
    run_dir = RunDir(cfg.out)
    if cfg.resume:
        if _last_checkpoint(run_dir) is None:
            raise ConfigError(f"--resume: {run_dir.path} has no checkpoint to continue from")
    elif is_main_process() and (run_dir.is_finished() or run_dir.checkpoints.exists()):
        raise ConfigError(
            f"--out {run_dir.path} already holds a run; choose another --out, or pass --resume "
            "to continue it"
        )
    run_dir.path.mkdir(parents=True, exist_ok=True)
    if is_main_process():
        dump_config(cfg, run_dir.config)
    return run_dir


def _print_config(cfg: TrainConfig) -> None:
    print("slmtune train with:")
    for key, value in cfg.model_dump().items():
        print(f"  {key}: {value}")


def _load_data(cfg: TrainConfig) -> tuple[list[Example], list[Example]]:
    loaded = load_examples(cfg.data, cfg.format, skip_invalid=cfg.skip_invalid)
    if loaded.problems:
        print(f"warning: dropped {len(loaded.problems)} invalid record(s) (--skip-invalid):")
        for p in loaded.problems[:10]:
            print(f"  {p}")
    examples = loaded.examples
    if cfg.eval_data:
        return examples, load_examples(cfg.eval_data, cfg.format).examples
    if cfg.eval_ratio:
        shuffled = examples[:]
        random.Random(cfg.seed).shuffle(shuffled)
        n_eval = max(1, round(len(shuffled) * cfg.eval_ratio))
        return shuffled[n_eval:], shuffled[:n_eval]
    return examples, []


def render_examples(examples: list[Example], renderer: ChatRenderer, what: str) -> list[Rendered]:
    """Render everything up front, warn about truncation, fail if nothing would be learned."""
    rows = [renderer.render(e.messages) for e in examples]
    truncated = sum(r.truncated for r in rows)
    cut = sum(r.answer_cut for r in rows)
    if truncated:
        print(
            f"warning: {truncated}/{len(rows)} {what} examples exceed --max-length "
            f"{renderer.max_length}; their prompts were shortened"
            + (f", and {cut} lost part of the answer" if cut else "")
        )
    empty = [e for e, r in zip(examples, rows, strict=True) if r.n_trained == 0]
    if len(empty) == len(rows):
        raise DataError(
            [Problem(e.source, "", None, "no trained tokens") for e in empty[:5]],
            hint="every example has zero trained tokens: the answers are empty or cut off by "
            "--max-length; nothing would be learned",
        )
    return [r for r in rows if r.n_trained]


def attach_method(model, cfg: TrainConfig):
    """Wrap the model for LoRA, or leave it whole for a full fine-tune."""
    if cfg.method == "full":
        trainable = sum(p.numel() for p in model.parameters())
        print(
            f"trainable params: {trainable:,} || all params: {trainable:,} || trainable%: 100.0000"
        )
        return model
    from peft import LoraConfig, get_peft_model

    targets = cfg.lora_targets
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets
        if targets == "all-linear"
        else [t.strip() for t in targets.split(",")],
        task_type="CAUSAL_LM",
    )
    try:
        model = get_peft_model(model, lora)
    except ValueError as e:  # e.g. a target module name that does not exist
        raise ConfigError(f"--lora-targets {targets}: {e}") from e
    model.print_trainable_parameters()
    return model


def _base_dtype(cfg: TrainConfig) -> str:
    """Frozen LoRA base weights in bf16 when computing in bf16 anyway: autocast would cast
    them to bf16 at every forward; storing them so halves their memory. PEFT keeps the
    trainable adapter weights in fp32 (autocast_adapter_dtype), so updates stay exact."""
    if cfg.method == "lora" and cfg.bf16_base and _use_bf16(cfg):
        return "bfloat16"
    return "float32"


def _use_bf16(cfg: TrainConfig) -> bool:
    if cfg.dtype != "auto":
        return cfg.dtype == "bfloat16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def _build_trainer(cfg, run_dir, model, tokenizer, train_rows, eval_rows) -> SlmTrainer:
    from transformers import TrainingArguments

    report = {"none": [], "tensorboard": ["tensorboard"], "swanlab": ["swanlab"]}[cfg.report_to]
    if cfg.report_to == "tensorboard":
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir.path / "tensorboard")
    if cfg.report_to == "swanlab":
        os.environ["SWANLAB_LOG_DIR"] = str(run_dir.path / "swanlog")
    if cfg.report_to == "swanlab":
        try:
            import swanlab  # noqa: F401
        except ImportError as e:
            raise ConfigError("--report-to swanlab: run `pip install swanlab` first") from e
    args = TrainingArguments(
        output_dir=str(run_dir.checkpoints),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        learning_rate=cfg.lr,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        bf16=_use_bf16(cfg),
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if eval_rows else "no",
        eval_steps=cfg.save_steps,
        report_to=report,
        disable_tqdm=True,
        remove_unused_columns=False,
        # Without packing, batches of similar length keep padding near zero. On CPU this beats
        # packing: SDPA cannot skip the masked-out blocks of a packed row's attention.
        train_sampling_strategy="group_by_length"
        if cfg.group_by_length and not cfg.packing
        else "random",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # LoRA uses every adapter weight in every step
    )
    trainer = SlmTrainer(
        model=model,
        args=args,
        train_dataset=RenderedDataset(train_rows),
        eval_dataset=RenderedDataset(eval_rows) if eval_rows else None,
        data_collator=Collator(tokenizer.pad_token_id, packing=cfg.packing),
        labels_only_logits=cfg.labels_only_logits,
        callbacks=[ProgressCallback(), JsonlLogCallback(run_dir.train_log)],
    )
    # Our bar replaces Trainer's own printing of every log dict.
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer


def _write_summary(run_dir: RunDir, trainer: SlmTrainer, result, seconds: float) -> dict:
    log = trainer.state.log_history
    losses = [r["loss"] for r in log if "loss" in r]
    evals = [r["eval_loss"] for r in log if "eval_loss" in r]
    world = trainer.accelerator.num_processes
    summary = {
        "steps": trainer.state.global_step,
        "seconds": round(seconds, 1),
        "tokens": trainer.tokens_seen * world,
        "trained_tokens": trainer.trained_tokens_seen * world,
        "tokens_per_second": round(trainer.tokens_seen * world / max(seconds, 1e-9), 1),
        "trained_tokens_per_second": round(
            trainer.trained_tokens_seen * world / max(seconds, 1e-9), 1
        ),
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "final_eval_loss": evals[-1] if evals else None,
        "peak_memory_mb": round(peak_memory_mb(), 1),
        "bf16": trainer.args.bf16,
        "processes": world,
    }
    run_dir.summary.write_text(json.dumps(summary, indent=2))
    if run_dir.train_log.exists():
        plot_loss(run_dir.train_log, run_dir.loss_plot)
    return summary


def _last_checkpoint(run_dir: RunDir) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    ckpt = run_dir.checkpoints
    return get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None


def common_system_prompt(examples: list[Example]) -> str | None:
    """The system prompt shared by every example, used by `predict --text`; else None."""
    prompts = {e.messages[0].content if e.messages[0].role == "system" else None for e in examples}
    return prompts.pop() if len(prompts) == 1 else None
