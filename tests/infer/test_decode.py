"""The continuous-batching decode loop: rows join and leave between steps without changing
anyone's answer."""

from __future__ import annotations

import json

import pytest
import torch

from slmtune.infer.constrain import compiled_grammar
from slmtune.infer.decode import DecodeLoop, Row
from slmtune.infer.kv_cache import GrowingCache, rows_in
from slmtune.run import open_run

TEXTS = [
    "我叫张三",
    "邮箱zhangsan@qq.com，电话13800000000，地址北京市海淀区",
    "hello",
    "用户5",
    "我",
]


@pytest.fixture(scope="module")
def loaded(tiny_run):
    return open_run(str(tiny_run))


def _rows(loaded, texts, max_new_tokens=10, **kw) -> list[Row]:
    stops = frozenset(loaded.renderer.stop_token_ids)
    return [
        Row(loaded.renderer.prompt_ids(loaded.prompt(t))[0],
            max_new_tokens, stops, **kw)
        for t in texts
    ]  # fmt: skip


def _alone(loaded, row: Row) -> list[int]:
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    solo = Row(row.prompt, row.max_new_tokens, row.stop_ids, row.grammar, row.temperature,
               row.top_p, row.seed)  # fmt: skip
    loop.add([solo])
    while loop.rows:
        loop.step()
    return solo.tokens


def _check_no_dead_columns(loop: DecodeLoop) -> None:
    if loop.rows:
        assert bool(loop.mask[:, 0].any()), "a column of padding only was kept"
        loop._settle()  # rows that left are dropped from the cache lazily
        assert loop.mask.shape == (len(loop.rows), loop.cache.get_seq_length())


def test_rows_joining_and_leaving_mid_flight_answer_as_alone(loaded):
    rows = _rows(loaded, TEXTS)
    rows[2].max_new_tokens = 3  # leaves early, while others are in flight
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add(rows[:2])
    for _ in range(2):
        loop.step()
    loop.add(rows[2:4])  # join a batch that is two tokens in
    finished = []
    for _ in range(4):
        finished += loop.step()
        _check_no_dead_columns(loop)
    assert rows[2] in finished and rows[2] not in loop.rows
    loop.add(rows[4:])
    while loop.rows:
        finished += loop.step()
        _check_no_dead_columns(loop)
    assert loop.cache is None  # nothing in flight, nothing held
    assert sorted(map(id, finished)) == sorted(map(id, rows))
    for row in rows:
        assert row.tokens == _alone(loaded, row)
        assert row.finish in ("stop", "length")
    assert len(rows[2].tokens) <= 3


def test_rows_that_leave_and_join_in_one_gap_share_one_cache_copy(loaded):
    """A row that leaves is dropped from the cache by the next join, in the same copy (the
    serving pattern: one answer ends, the next request comes in); answers are unchanged."""
    rows = _rows(loaded, TEXTS[:4])
    rows[0].max_new_tokens = 2  # leaves after the first step
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add(rows[:2])
    assert rows[0] in loop.step()
    assert loop.leaving is not None  # not yet cut from the cache...
    loop.add(rows[2:4])
    assert loop.leaving is None  # ...the join did it
    assert rows_in(loop.cache) == len(loop.rows) == 3
    assert loop.mask.shape[1] == loop.cache.get_seq_length()
    while loop.rows:
        loop.step()
    for row in rows:
        assert row.tokens == _alone(loaded, row)


def test_seeded_sampling_is_the_same_alone_and_in_company(loaded):
    rows = _rows(loaded, TEXTS[:3], temperature=1.0, seed=7)
    rows[1].seed = 8
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add(rows)
    while loop.rows:
        loop.step()
    assert rows[0].tokens == _alone(loaded, rows[0])
    assert rows[2].tokens == _alone(loaded, rows[2])  # same seed, other prompt: its own draw
    greedy = _rows(loaded, TEXTS[:1])[0]
    assert rows[0].tokens != _alone(loaded, greedy)  # a random tiny model samples widely


def test_constrained_and_free_rows_share_steps(loaded):
    schema = {"type": "object", "properties": {"name": {"type": "string"}},
              "required": ["name"], "additionalProperties": False}  # fmt: skip
    grammar = compiled_grammar(loaded, schema)
    free = _rows(loaded, TEXTS[:2], max_new_tokens=30)
    constrained = _rows(loaded, TEXTS[:2], max_new_tokens=30, grammar=grammar)
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add([free[0], constrained[0], free[1], constrained[1]])
    while loop.rows:
        loop.step()
    for row in constrained:
        text = loaded.tokenizer.decode(row.tokens, skip_special_tokens=True)
        if row.finish == "stop":
            assert list(json.loads(text)) == ["name"]
        else:  # cut at the limit: still a prefix of the schema's shape
            assert text.startswith('{"name": "')
    for row in free:
        assert row.tokens == _alone(loaded, row)


def test_rows_for_two_adapters_share_a_step(tiny_run, monkeypatch):
    monkeypatch.setenv("SLMTUNE_PREFIX_CACHE", "1")  # each adapter keeps its own starts
    from peft import PeftModel

    from slmtune.models import load_model
    from slmtune.run import open_renderer

    view = open_renderer(str(tiny_run))
    base = load_model(view.meta["base_model"])
    model = PeftModel.from_pretrained(base, tiny_run / "adapter", adapter_name="a")
    model.load_adapter(tiny_run / "adapter", adapter_name="b")
    with torch.no_grad():  # make "b" a different fine-tune
        for name, param in model.named_parameters():
            if "lora_B.b" in name:
                param.add_(torch.randn_like(param) * 0.5)
    model.eval()
    view.model = model
    pad = view.tokenizer.pad_token_id
    mixed = _rows(view, TEXTS[:2] * 3)
    for row, adapter in zip(mixed, ["a", "a", "b", "b", None, None], strict=True):
        row.adapter = adapter
    loop = DecodeLoop(model, pad)
    loop.add(mixed)
    while loop.rows:
        loop.step()
    for row in mixed:
        solo = Row(row.prompt, row.max_new_tokens, row.stop_ids, adapter=row.adapter)
        alone = DecodeLoop(model, pad)
        alone.add([solo])
        while alone.rows:
            alone.step()
        assert row.tokens == solo.tokens, row.adapter
    assert mixed[0].tokens != mixed[2].tokens  # the adapters really differ
    # one row per prefill: each adapter's rows reuse that adapter's stored prompt start only
    again = [Row(r.prompt, r.max_new_tokens, r.stop_ids, adapter=r.adapter) for r in mixed]
    one_by_one = DecodeLoop(model, pad)
    for row in again:
        one_by_one.add([row])
    while one_by_one.rows:
        one_by_one.step()
    assert [r.tokens for r in again] == [r.tokens for r in mixed]
    assert set(one_by_one.prefixes.stored) == {"a", "b", None}


def test_bf16_head_gives_the_fp32_greedy_answers_and_leaves_the_model_alone(loaded, monkeypatch):
    own_head = loaded.model.get_output_embeddings()
    answers = {}
    for setting in ("0", "head"):
        monkeypatch.setenv("SLMTUNE_BF16_MATMUL", setting)
        rows = _rows(loaded, TEXTS, max_new_tokens=16)
        loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
        assert (loop.head is not None) == (setting == "head")
        loop.add(rows)
        while loop.rows:
            loop.step()
        answers[setting] = [row.tokens for row in rows]
        assert loaded.model.get_output_embeddings() is own_head
    assert answers["head"] == answers["0"]


def test_bf16_layers_are_used_only_inside_the_loop_and_stay_close_to_fp32(loaded, monkeypatch):
    rows = _rows(loaded, TEXTS[:2])
    ids = torch.tensor([rows[1].prompt])
    with torch.inference_mode():
        fp32 = loaded.model(input_ids=ids).logits
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "1")
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    assert len(loop.bf16.linears) >= 7  # every projection of the tiny model's layers
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        hidden = loop._forward(ids, mask, (mask.cumsum(-1) - 1), GrowingCache(), rows[1:])
        bf16 = loop.logits(hidden)
    difference = (bf16 - fp32[:, -1]).abs().max().item()
    assert 0 < difference < 0.05 * fp32.abs().max().item()  # bf16 products, fp32-close
    for module, _ in loop.bf16.linears:
        assert "forward" not in vars(module)  # the model's own fp32 forward is back
    with torch.inference_mode():
        assert torch.equal(loaded.model(input_ids=ids).logits, fp32)


def test_a_bad_bf16_setting_is_a_clear_error(loaded, monkeypatch):
    from slmtune.errors import ConfigError

    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "yes")
    with pytest.raises(ConfigError, match="SLMTUNE_BF16_MATMUL=yes"):
        DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)


def test_a_failing_row_ends_alone_and_its_neighbours_answer_as_alone(loaded):
    rows = _rows(loaded, TEXTS[:3], max_new_tokens=12)
    seen: list[int] = []

    def explode(token: int) -> bool:
        seen.append(token)
        if len(seen) == 3:
            raise RuntimeError("boom")
        return False

    rows[1].on_token = explode
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add(rows)
    while loop.rows:
        loop.step()
    assert rows[1].finish == "error" and "boom" in str(rows[1].error)
    for row in (rows[0], rows[2]):
        assert row.finish in ("stop", "length") and row.tokens == _alone(loaded, row)


def test_a_near_zero_temperature_is_greedy(loaded):
    (greedy,) = _rows(loaded, TEXTS[:1], max_new_tokens=12)
    (tiny_t,) = _rows(loaded, TEXTS[:1], max_new_tokens=12, temperature=1e-300, seed=1)
    assert not tiny_t.sampled
    assert _alone(loaded, tiny_t) == _alone(loaded, greedy)


def test_sampling_survives_nan_logits():
    row = Row([1], 4, frozenset(), temperature=0.7, seed=0)
    row._start()
    assert 0 <= row.sample(torch.full((16,), float("nan"))) < 16
    logits = torch.full((16,), float("nan"))
    logits[5] = 1.0
    assert row.sample(logits) == 5


def test_answers_match_a_no_cache_reference_past_the_sliding_window(loaded, monkeypatch):
    """Against an independent reference (a full forward pass over the whole sequence for
    every token, no cache): prompts longer than the tiny Gemma-3's 64-token sliding window,
    of different lengths, decoded together after a shorter prompt with the same start."""
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")  # exact fp32 on both sides
    window = loaded.model.config.sliding_window
    texts = ["我叫张三，住在北京市朝阳区建国路88号。" * k for k in (12, 16)]
    texts.append("停电三天了电表读数异常水费太贵物业不管" * 4)  # shortened to the context
    rows = _rows(loaded, texts, max_new_tokens=24)
    for row in rows:
        row.logprobs = []  # one list each
    assert all(len(r.prompt) > window for r in rows)
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add(_rows(loaded, ["我叫张三"], max_new_tokens=1))  # a stored start they share
    loop.add(rows)
    while loop.rows:
        loop.step()
    assert sum(len(row.tokens) for row in rows) >= 24  # real answers, not instant stops
    for row in rows:
        tokens, logprobs = _reference(loaded.model, row.prompt, len(row.tokens), row.stop_ids)
        assert row.tokens == tokens
        assert row.logprobs[: len(logprobs)] == pytest.approx(logprobs, abs=1e-4)


@torch.inference_mode()
def _reference(model, prompt: list[int], n: int, stops) -> tuple[list[int], list[float]]:
    ids, logprobs = list(prompt), []
    for _ in range(n):
        logits = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1]
        token = int(logits.argmax())
        logprobs.append(float(torch.log_softmax(logits.float(), -1)[token]))
        if token in stops:
            break
        ids.append(token)
    return ids[len(prompt) :], logprobs


def test_the_stream_reads_the_next_window_while_a_long_answer_runs(loaded):
    """extract's path: a long answer in the first window does not hold back the next
    windows (the loop does not drain between them), and every request is answered once."""
    from slmtune.infer.driver import Request, answer_stream

    requests = [
        (i, Request(loaded.prompt(TEXTS[i % len(TEXTS)]), max_new_tokens=60 if i == 0 else 2))
        for i in range(8)
    ]
    order = [tag for tag, _ in answer_stream(loaded, iter(requests), batch_size=3, window=2)]
    assert sorted(order) == list(range(8))
    assert order.index(0) > order.index(5)  # windows 2 and 3 went by while 0 was decoding


def test_logprobs_are_the_models_own_for_each_chosen_token(loaded, monkeypatch):
    """Row.logprobs against a full forward pass per token (no cache, no batch): the
    log-probability the model gives each token it chose, the ending stop token included."""
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")
    rows = _rows(loaded, ["我叫张三", "电表读数异常，水费太贵了"], max_new_tokens=12)
    for row in rows:
        row.logprobs = []
    loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
    loop.add(rows)
    while loop.rows:
        loop.step()
    for row in rows:
        chosen = row.tokens + ([] if row.finish == "length" else [None])  # None: the stop token
        assert len(row.logprobs) == len(chosen)
        for k, logprob in enumerate(row.logprobs):
            with torch.inference_mode():
                ids = torch.tensor([row.prompt + row.tokens[:k]])
                logits = loaded.model(input_ids=ids, use_cache=False).logits[0, -1].float()
            expected = torch.log_softmax(logits, -1)
            token = chosen[k] if chosen[k] is not None else int(logits.argmax())
            assert logprob == pytest.approx(float(expected[token]), abs=1e-3)
            assert logprob == pytest.approx(float(expected.max()), abs=1e-3)  # greedy: the best


def test_the_sparse_head_changes_no_answer_and_is_used(loaded, monkeypatch):
    """Rows whose masks leave few tokens get the logits of those tokens only: the answers and
    their log-probabilities equal the full head's, with grounded, grammar-only and free rows
    in the same steps."""
    from slmtune.infer.driver import Request, answer_all

    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")  # the exact fp32 head on both sides
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"], "maxLength": 20, "verbatim": True},
            "note": {"type": "string", "maxLength": 12},
        },
        "required": ["name", "note"],
        "additionalProperties": False,
    }
    free_schema = {**schema, "properties": {**schema["properties"], "name": {"type": "string"}}}
    sparse_calls = []
    logits_of = DecodeLoop._logits_of

    def counted(self, hidden, few):
        sparse_calls.extend(len(ids) for ids in few.values())
        return logits_of(self, hidden, few)

    monkeypatch.setattr(DecodeLoop, "_logits_of", counted)
    answers = {}
    for setting in ("0", "1"):
        monkeypatch.setenv("SLMTUNE_SPARSE_HEAD", setting)
        requests = [
            Request(loaded.prompt(text), max_new_tokens=30, schema=s, logprobs=True)
            for text in TEXTS[:3]
            for s in (schema, free_schema, None)
        ]
        answers[setting] = answer_all(loaded, requests, batch_size=9)
        assert bool(sparse_calls) == (setting == "1")
    for sparse, full in zip(answers["1"], answers["0"], strict=True):
        assert sparse.text == full.text
        assert sparse.logprobs == pytest.approx(full.logprobs, abs=1e-4)
    assert len(sparse_calls) > 20  # most constrained steps leave few tokens


def test_a_stored_prompt_start_changes_no_answer_and_is_used(loaded, monkeypatch):
    """Prompts that start like an earlier one (the template and the system prompt) prefill
    only the rest: the answers and their log-probabilities equal prefilling each prompt
    whole, with rows added alone, in groups of different lengths and mid-flight, grammar and
    grounding included."""
    from slmtune.infer.driver import Request, prepare

    SYSTEM = "提取json 姓名 地址 邮箱 问题 投诉内容"  # noqa: N806  (prompts within the window)
    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")
    schema = {
        "type": "object",
        "properties": {"name": {"type": ["string", "null"], "maxLength": 20, "verbatim": True}},
        "required": ["name"],
        "additionalProperties": False,
    }
    prefilled = []
    forward = DecodeLoop._forward

    def counted(self, ids, mask, positions, cache, rows, keep=1):
        if keep == 1 and (ids.shape[1] > 1 or cache.get_seq_length() == 0):  # a prefill
            prefilled.append(int(mask[:, -ids.shape[1] :].sum()))
        return forward(self, ids, mask, positions, cache, rows, keep)

    monkeypatch.setattr(DecodeLoop, "_forward", counted)
    answers, tokens_prefilled = {}, {}
    for setting in ("0", "1"):
        monkeypatch.setenv("SLMTUNE_PREFIX_CACHE", setting)
        prefilled.clear()
        requests = [
            Request(loaded.prompt(text, system=SYSTEM), max_new_tokens=16, schema=s, logprobs=True)
            for text in TEXTS
            for s in (schema, None)
        ]
        rows = [prepare(loaded, r) for r in requests]
        loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
        loop.add(rows[:1])
        loop.add(rows[1:3])
        loop.step()
        loop.add(rows[3:])
        while loop.rows:
            loop.step()
        answers[setting] = rows
        tokens_prefilled[setting] = sum(prefilled)
    for stored, whole in zip(answers["1"], answers["0"], strict=True):
        assert stored.tokens == whole.tokens
        assert stored.logprobs == pytest.approx(whole.logprobs, abs=1e-4)
    system = len(loaded.renderer.prompt_ids(loaded.prompt("", system=SYSTEM))[0]) - 8  # about
    assert tokens_prefilled["0"] - tokens_prefilled["1"] >= system * (len(requests) - 1)


def test_drafted_tokens_change_no_answer_and_save_passes(loaded, monkeypatch):
    """Each step verifies the tokens the grammar forces or the prompt suggests (a value
    being copied): greedy answers and their log-probabilities equal one token per pass, for
    grammar, grounded and free rows added alone, in groups and mid-flight; and fewer passes
    are made."""
    from slmtune.infer.driver import Request, prepare

    monkeypatch.setenv("SLMTUNE_BF16_MATMUL", "0")
    keys = ("name", "address", "email", "question")
    schema = {
        "type": "object",
        "properties": {k: {"type": ["string", "null"], "maxLength": 24} for k in keys},
        "required": list(keys),
        "additionalProperties": False,
    }
    grounded = {
        **schema,
        "properties": {k: {**v, "verbatim": True} for k, v in schema["properties"].items()},
    }
    texts = [*TEXTS, "我叫张三，住在北京市朝阳区建国路88号。" * 3]
    answers, passes = {}, {}
    for setting in ("0", "1"):
        monkeypatch.setenv("SLMTUNE_DRAFT", setting)
        requests = [
            Request(loaded.prompt(t), max_new_tokens=40, schema=s, logprobs=True)
            for t in texts
            for s in (schema, grounded, None)
        ]
        rows = [prepare(loaded, r) for r in requests]
        loop = DecodeLoop(loaded.model, loaded.tokenizer.pad_token_id)
        loop.add(rows[:1])
        loop.add(rows[1:4])
        loop.step()
        loop.add(rows[4:])
        while loop.rows:
            loop.step()
        answers[setting] = rows
        passes[setting] = sum(r.passes for r in rows)
    for drafted, plain in zip(answers["1"], answers["0"], strict=True):
        assert drafted.tokens == plain.tokens
        assert drafted.finish == plain.finish
        assert drafted.logprobs == pytest.approx(plain.logprobs, abs=1e-4)
    tokens = sum(len(r.tokens) + (r.finish == "stop") for r in answers["0"])
    assert tokens > 100  # real answers
    assert passes["0"] == tokens  # one pass per token (the first from the prefill)
    assert passes["1"] < tokens * 0.8


def test_the_bitmask_helpers_read_xgrammars_layout(loaded):
    import xgrammar as xgr

    from slmtune.infer.token_masks import allowed_bits, popcount, set_bits

    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    matcher = xgr.GrammarMatcher(compiled_grammar(loaded, schema))
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    for text in ("", '{"a": "'):  # few tokens allowed, then nearly all
        for t in loaded.tokenizer.encode(text, add_special_tokens=False):
            assert matcher.accept_token(t)
        bitmask = xgr.allocate_token_bitmask(1, vocab)
        matcher.fill_next_token_bitmask(bitmask, 0)
        logits = torch.zeros(1, vocab)
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        allowed = torch.isfinite(logits[0])
        assert torch.equal(set_bits(bitmask[0], vocab), allowed.nonzero().squeeze(1))
        assert popcount(bitmask[0], vocab) == int(allowed.sum())
        ids = torch.arange(vocab)
        assert torch.equal(allowed_bits(bitmask[0], ids), allowed)
