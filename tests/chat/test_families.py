"""Each of the seeds' model families, as a tiny model with its template: forward + generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from slmtune.data.types import Message as M
from slmtune.run import open_run
from tests.tiny import tiny_model_dir

FIXTURES = Path(__file__).parent.parent / "fixtures" / "templates"
FAMILIES = [
    ("gemma3_text", None, "gemma"),  # the embedded Gemma-3-270M: base model, no template
    ("qwen3", "qwen3.jinja", "qwen3"),  # Qwen3-0.6B and -Base
    ("qwen2", "qwen1.5-chat.jinja", "hf"),  # Qwen1.5-1.8B-Chat
    ("gemma", "gemma-it.jinja", "hf"),  # Gemma-2b-it
]


@pytest.mark.parametrize(("family", "fixture", "template"), FAMILIES)
def test_family_trains_and_generates(tmp_path, family, fixture, template):
    chat_template = (FIXTURES / fixture).read_text() if fixture else None
    model_dir = tiny_model_dir(tmp_path / family, family, chat_template)
    loaded = open_run(str(model_dir))
    assert loaded.meta["template"] == template
    messages = [M("system", "提取json"), M("user", "我叫张三"), M("assistant", '{"name": "张三"}')]
    rendered = loaded.renderer.render(messages)
    ids = torch.tensor([rendered.input_ids])
    labels = torch.tensor([rendered.labels])
    out = loaded.model(input_ids=ids, labels=labels)
    assert torch.isfinite(out.loss)
    prompt, _ = loaded.renderer.prompt_ids(messages[:-1])
    gen = loaded.model.generate(torch.tensor([prompt]), max_new_tokens=3, do_sample=False)
    assert gen.shape[1] > len(prompt)
