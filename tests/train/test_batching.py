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
