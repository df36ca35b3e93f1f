"""The heart: masks and the train/inference prefix property, for every supported template."""

from __future__ import annotations

from pathlib import Path

import pytest

from slmtune.chat import IGNORE, ChatRenderer, choose_template, install_template
from slmtune.data.types import Message as M
from slmtune.errors import ConfigError
from tests.tiny import tiny_tokenizer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "templates"
ANSWER = '{"name": "张三", "email": null}'

SINGLE_WITH_SYSTEM = [
    M("system", "提取json"),
    M("user", "我叫张三，住在北京"),
    M("assistant", ANSWER),
]
SINGLE = [M("user", "我叫张三"), M("assistant", ANSWER)]
MULTI = [
    M("system", "be brief"),
    M("user", "hello"),
    M("assistant", "hi there"),
    M("user", "我叫张三"),
    M("assistant", ANSWER),
]
CONVERSATIONS = {"single+system": SINGLE_WITH_SYSTEM, "single": SINGLE, "multi": MULTI}


def renderer_for(template: str, family: str = "gemma3_text", **kw) -> ChatRenderer:
    """template: a built-in name, or a fixture file name used through `auto`."""
    if template.endswith(".jinja"):
        tok = tiny_tokenizer((FIXTURES / template).read_text())
        install_template(tok, choose_template(tok, family, "auto"))
    else:
        tok = tiny_tokenizer()
        install_template(tok, choose_template(tok, family, template))
    return ChatRenderer(tok, **kw)


TEMPLATES = ["gemma", "chatml", "qwen3", "qwen3.jinja", "qwen1.5-chat.jinja", "gemma-it.jinja"]


def trained_text(r: ChatRenderer, rendered) -> str:
    return r.tokenizer.decode(
        [t for t, lab in zip(rendered.input_ids, rendered.labels, strict=True) if lab != IGNORE]
    )


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("conv", list(CONVERSATIONS))
def test_inference_prompt_equals_training_prefix_token_for_token(template, conv):
    r = renderer_for(template)
    messages = CONVERSATIONS[conv]
    rendered = r.render(messages)
    prompt_ids, truncated = r.prompt_ids(messages[:-1])
    assert not truncated
    assert prompt_ids == rendered.input_ids[: last_answer_start(rendered.labels)]
    assert r.tokenizer.decode(prompt_ids) == r.prompt_text(messages[:-1])
    if conv != "multi":
        assert last_answer_start(rendered.labels) == rendered.prompt_length


def last_answer_start(labels: list[int]) -> int:
    """Index of the first trained token of the final answer."""
    i = len(labels)
    while labels[i - 1] == IGNORE:  # trailing masked tokens (none for these templates)
        i -= 1
    while i > 0 and labels[i - 1] != IGNORE:
        i -= 1
    return i


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("gemma", ANSWER + "<end_of_turn>\n"),
        ("chatml", ANSWER + "<|im_end|>\n"),
        ("qwen3", ANSWER + "<|im_end|>\n"),
        ("qwen3.jinja", ANSWER + "<|im_end|>\n"),
        ("qwen1.5-chat.jinja", ANSWER + "<|im_end|>\n"),
        ("gemma-it.jinja", ANSWER + "<end_of_turn>\n"),
    ],
)
def test_only_the_answer_and_its_turn_end_are_trained(template, expected):
    r = renderer_for(template)
    assert trained_text(r, r.render(SINGLE_WITH_SYSTEM)) == expected


def test_every_assistant_turn_is_trained_unless_last_turn_only():
    r = renderer_for("gemma")
    assert (
        trained_text(r, r.render(MULTI)) == "hi there<end_of_turn>\n" + ANSWER + "<end_of_turn>\n"
    )
    last = renderer_for("gemma", last_turn_only=True)
    assert trained_text(last, last.render(MULTI)) == ANSWER + "<end_of_turn>\n"


def test_system_and_user_text_never_trained():
    r = renderer_for("chatml")
    rendered = r.render(SINGLE_WITH_SYSTEM)
    masked = r.tokenizer.decode(
        [t for t, lab in zip(rendered.input_ids, rendered.labels, strict=True) if lab == IGNORE]
    )
    assert (
        masked
        == "<|im_start|>system\n提取json<|im_end|>\n<|im_start|>user\n我叫张三，住在北京<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("template", ["qwen3", "qwen3.jinja"])
def test_qwen3_empty_think_block_in_training_and_inference_alike(template):
    r = renderer_for(template, family="qwen3")
    rendered = r.render(SINGLE)
    prefix = r.tokenizer.decode(rendered.input_ids[: rendered.prompt_length])
    assert prefix.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert r.prompt_text(SINGLE[:-1]) == prefix
    assert "<think>" not in trained_text(r, rendered)


def test_auto_picks_the_builtin_qwen3_for_qwen3_templates():
    tok = tiny_tokenizer((FIXTURES / "qwen3.jinja").read_text())
    assert choose_template(tok, "qwen3", "auto") == "qwen3"


def test_stock_qwen3_template_is_not_prefix_stable_in_multi_turn():
    # Why auto swaps it: rendered as `hf`, earlier assistant turns lose their think block.
    tok = tiny_tokenizer((FIXTURES / "qwen3.jinja").read_text())
    install_template(tok, "hf")
    with pytest.raises(Exception, match="last-turn-only"):
        ChatRenderer(tok).render(MULTI)
    last = ChatRenderer(tok, last_turn_only=True)
    rendered = last.render(MULTI)
    assert last.prompt_ids(MULTI[:-1])[0] == rendered.input_ids[: rendered.prompt_length]
    assert trained_text(last, rendered) == ANSWER + "<|im_end|>\n"


def test_template_without_system_role_gets_system_folded_into_first_user_turn():
    r = renderer_for("gemma-it.jinja", family="gemma")
    assert choose_template(r.tokenizer, "gemma", "auto") == "hf"
    text = r.prompt_text(SINGLE_WITH_SYSTEM[:-1])
    assert (
        text
        == "<bos><start_of_turn>user\n提取json\n\n我叫张三，住在北京<end_of_turn>\n<start_of_turn>model\n"
    )


def test_qwen15_default_system_prompt_is_masked():
    r = renderer_for("qwen1.5-chat.jinja", family="qwen2")
    rendered = r.render(SINGLE)
    assert "You are a helpful assistant." in r.tokenizer.decode(
        rendered.input_ids[: rendered.prompt_length]
    )


def test_too_long_prompt_is_shortened_and_the_answer_survives():
    r = renderer_for("gemma", max_length=60)
    long = [M("user", "很长的投诉内容" * 40), M("assistant", ANSWER)]
    rendered = r.render(long)
    assert rendered.truncated and not rendered.answer_cut
    assert len(rendered.input_ids) <= 60
    assert trained_text(r, rendered) == ANSWER + "<end_of_turn>\n"
    prompt_ids, truncated = r.prompt_ids(long[:-1], max_tokens=rendered.prompt_length)
    assert truncated and prompt_ids == rendered.input_ids[: rendered.prompt_length]


def test_answer_longer_than_max_length_is_cut_and_flagged():
    r = renderer_for("gemma", max_length=20)
    rendered = r.render([M("user", "hi"), M("assistant", "很长的答案" * 30)])
    assert rendered.truncated and rendered.answer_cut and len(rendered.input_ids) == 20


@pytest.mark.parametrize(
    ("template", "marker"), [("gemma", "<end_of_turn>"), ("chatml", "<|im_end|>")]
)
def test_stop_tokens_are_the_turn_end_and_eos(template, marker):
    r = renderer_for(template)
    assert r.turn_end == marker
    assert r.stop_token_ids == [r.tokenizer.convert_tokens_to_ids(marker), r.tokenizer.eos_token_id]
    assert r.stop_strings == []


def test_choose_template_defaults_and_errors():
    tok = tiny_tokenizer()
    assert choose_template(tok, "gemma3_text") == "gemma"
    assert choose_template(tok, "gemma") == "gemma"
    assert choose_template(tok, "llama") == "chatml"
    tok_with = tiny_tokenizer((FIXTURES / "qwen1.5-chat.jinja").read_text())
    assert choose_template(tok_with, "qwen2") == "hf"
    with pytest.raises(ConfigError, match="auto, hf, gemma, chatml, qwen3"):
        choose_template(tok, "gemma3_text", "llama9")
    with pytest.raises(ConfigError, match="ships no chat template"):
        choose_template(tok, "gemma3_text", "hf")
