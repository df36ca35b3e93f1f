"""The HF Trainer, with the loss computed only where tokens are trained.

With a 262k vocabulary the LM head is most of the compute; prompts are masked, so
projecting only the trained positions (`logits_to_keep` as a boolean mask) gives the same
loss for a fraction of the work. The loss is a sum over trained tokens divided by the
number of trained tokens in the whole accumulated batch, i.e. exactly the token-mean the
seeds' recipe computes.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from transformers import Trainer

from slmtune.chat.render import IGNORE


class SlmTrainer(Trainer):
    loss_is_scaled_for_ga = True  # we divide by the accumulated token count ourselves

    def __init__(self, *args, labels_only_logits: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True  # makes Trainer count num_items_in_batch
        self.labels_only_logits = labels_only_logits
        self.tokens_seen = 0
        self.trained_tokens_seen = 0
        self._last_log = (time.time(), 0, 0)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        shift = inputs.pop("shift_labels")
        inputs.pop("labels", None)
        keep = shift != IGNORE
        if model.training:
            mask = inputs.get("attention_mask")
            self.tokens_seen += int(mask.sum()) if mask is not None else inputs["input_ids"].numel()
            self.trained_tokens_seen += int(keep.sum())
        if self.labels_only_logits:
            outputs = model(**inputs, logits_to_keep=keep, use_cache=False)
            logits = outputs.logits.reshape(-1, outputs.logits.shape[-1])  # [n_trained, vocab]
        else:
            outputs = model(**inputs, use_cache=False)
            logits = outputs.logits[keep]
        loss = F.cross_entropy(logits.float(), shift[keep], reduction="sum")
        if num_items_in_batch is None:
            loss = loss / keep.sum().clamp(min=1)
        else:
            loss = loss / num_items_in_batch
            if self.args.average_tokens_across_devices:
                # num_items_in_batch counts all ranks; DDP averages gradients over ranks.
                loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs:
            now = time.time()
            last_time, last_tokens, last_trained = self._last_log
            world = self.accelerator.num_processes
            elapsed = max(now - last_time, 1e-9)
            logs["tokens_per_second"] = round((self.tokens_seen - last_tokens) * world / elapsed, 1)
            logs["trained_tokens_per_second"] = round(
                (self.trained_tokens_seen - last_trained) * world / elapsed, 1
            )
            logs["tokens"] = self.tokens_seen * world
            self._last_log = (now, self.tokens_seen, self.trained_tokens_seen)
        super().log(logs, *args, **kwargs)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (and CUDA peak when on GPU), in MiB."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if torch.cuda.is_available():
        return max(rss, torch.cuda.max_memory_allocated() / 2**20)
    return rss
