"""What the user sees and keeps while training: a progress bar, a JSONL log, a loss curve."""

from __future__ import annotations

import json
from pathlib import Path

from tqdm.auto import tqdm
from transformers import TrainerCallback


class ProgressCallback(TrainerCallback):
    """One bar: steps, ETA, and the latest loss and tokens/s."""

    def __init__(self):
        self.bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = tqdm(
                total=state.max_steps, initial=state.global_step, desc="train", unit="step"
            )

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix(
                loss=f"{logs['loss']:.4f}", tok_s=f"{logs.get('tokens_per_second', 0):.0f}"
            )
        if self.bar is not None and logs and "eval_loss" in logs:
            self.bar.write(f"step {state.global_step}: eval_loss {logs['eval_loss']:.4f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()


class JsonlLogCallback(TrainerCallback):
    """Append every log record (step, loss, lr, tokens/s ...) to train_log.jsonl."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(
                    json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n"
                )


def plot_loss(log_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
