"""Packing and trained-position logits must give exactly the seeds' loss, only faster."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slmtune.chat.render import IGNORE
from slmtune.train.batching import Collator, shifted
from tests.tiny import tiny_config


def _tiny_gemma():
    torch.manual_seed(0)
    cfg, cls = tiny_config("gemma3_text", vocab=300)
    cfg.sliding_window = 16  # smaller than the examples, so sliding attention is exercised
    cfg._attn_implementation = "sdpa"
    return cls(cfg).eval()


def _features() -> list[dict]:
    torch.manual_seed(1)
    out = []
    for prompt, answer in [(30, 10), (50, 7), (20, 15)]:
        ids = torch.randint(5, 300, (prompt + answer,)).tolist()
        out.append({"input_ids": ids, "labels": [IGNORE] * prompt + ids[prompt:]})
    return out


def _loss(model, batch: dict, labels_only: bool) -> float:
    shift = batch["shift_labels"]
    keep = shift != IGNORE
    inputs = {k: v for k, v in batch.items() if k not in ("shift_labels", "labels")}
    with torch.no_grad():
        if labels_only:
            logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
            logits = logits.reshape(-1, logits.shape[-1])
        else:
            logits = model(**inputs, use_cache=False).logits[keep]
    return F.cross_entropy(logits.float(), shift[keep], reduction="sum").item() / int(keep.sum())


def test_shifted_labels_predict_the_next_token():
    assert shifted([IGNORE, IGNORE, 7, 8]) == [IGNORE, 7, 8, IGNORE]


def test_packed_batch_has_no_padding_and_restarting_positions():
    batch = Collator(pad_id=0, packing=True)(_features())
    assert batch["input_ids"].shape == (1, 40 + 57 + 35)
    assert "attention_mask" not in batch
    pos = batch["position_ids"][0].tolist()
    assert pos[:40] == list(range(40)) and pos[40:97] == list(range(57))
    # the last token of an example never predicts the first token of the next one
    assert batch["shift_labels"][0, 39].item() == IGNORE


def test_all_four_loss_paths_equal_the_reference_loss():
    model = _tiny_gemma()
    feats = _features()
    # Reference: the model's own loss, one example at a time (what the seeds compute).
    total, count = 0.0, 0
    for f in feats:
        labels = torch.tensor([f["labels"]])
        n = int((labels[0, 1:] != IGNORE).sum())
        with torch.no_grad():
            total += model(input_ids=torch.tensor([f["input_ids"]]), labels=labels).loss.item() * n
        count += n
    reference = total / count
    for packing in (True, False):
        batch = Collator(pad_id=0, packing=packing)(feats)
        for labels_only in (True, False):
            assert abs(_loss(model, batch, labels_only) - reference) < 1e-4, (packing, labels_only)


def test_packing_blocks_attention_across_examples():
    model = _tiny_gemma()
    feats = _features()
    packed = Collator(pad_id=0, packing=True)(feats)
    # Changing the first example must not change the loss of the others.
    feats2 = [dict(feats[0], input_ids=[7] * len(feats[0]["input_ids"])), *feats[1:]]
    packed2 = Collator(pad_id=0, packing=True)(feats2)
    inputs = {k: packed[k] for k in ("input_ids", "position_ids")}
    inputs2 = {k: packed2[k] for k in ("input_ids", "position_ids")}
    with torch.no_grad():
        a = model(**inputs, use_cache=False).logits[0, 40:]
        b = model(**inputs2, use_cache=False).logits[0, 40:]
    assert torch.allclose(a, b, atol=1e-5)


def test_accumulated_micro_batches_give_the_whole_batch_token_mean_gradient(tmp_path):
    """The real Trainer path: Trainer counts the accumulated batch's trained tokens
    (num_items_in_batch) and SlmTrainer.compute_loss divides each micro-batch's summed loss
    by it, so micro-batches of unequal size add up to the gradient of the token mean over
    every example (the seeds' loss), not a mean of per-micro-batch means."""
    from transformers import TrainingArguments

    from slmtune.train.trainer import SlmTrainer

    model = _tiny_gemma().train()
    feats = _features()
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], gradient_accumulation_steps=2)
    trainer = SlmTrainer(model=model, args=args)
    micro = [
        Collator(pad_id=0)(feats[:1]),
        Collator(pad_id=0)(feats[1:]),
    ]  # 10 vs 22 trained tokens

    def grads(num_items) -> torch.Tensor:
        model.zero_grad()
        for batch in micro:
            trainer.compute_loss(model, dict(batch), num_items_in_batch=num_items).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    accumulated = grads(trainer._get_num_items_in_batch(micro, torch.device("cpu")))
    model.zero_grad()
    losses, counts = [], []
    for f in feats:
        labels = torch.tensor([f["labels"]])
        counts.append(int((labels[0, 1:] != IGNORE).sum()))
        losses.append(model(input_ids=torch.tensor([f["input_ids"]]), labels=labels).loss)
    (sum(loss * n for loss, n in zip(losses, counts, strict=True)) / sum(counts)).backward()
    reference = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    assert torch.allclose(accumulated, reference, atol=1e-5, rtol=1e-4)
    per_micro_mean = grads(None) / 2  # what dividing each micro-batch by its own count gives
    assert not torch.allclose(per_micro_mean, reference, atol=1e-5, rtol=1e-4)
