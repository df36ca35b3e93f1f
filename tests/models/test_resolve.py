"""One resolver for every kind of model reference; never a network call."""

from __future__ import annotations

import pytest

from slmtune.errors import ModelError
from slmtune.models import list_models, resolve_model
from tests.tiny import tiny_model_dir


def test_local_hf_directory_resolves_to_itself(tmp_path):
    d = tiny_model_dir(tmp_path / "m", "qwen3")
    assert resolve_model(str(d)) == d


def test_hub_id_is_read_from_the_local_cache_only(tmp_path, monkeypatch, network_attempts):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelError, match="hf download Qwen/Qwen3-0.6B"):
        resolve_model("Qwen/Qwen3-0.6B")
    assert network_attempts == []


def test_hub_id_found_in_a_local_cache(tmp_path, monkeypatch):
    snap = tmp_path / "hub" / "models--Qwen--Qwen3-0.6B" / "snapshots" / "abc123"
    tiny_model_dir(snap, "qwen3")
    (tmp_path / "hub" / "models--Qwen--Qwen3-0.6B" / "refs").mkdir()
    (tmp_path / "hub" / "models--Qwen--Qwen3-0.6B" / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model("Qwen/Qwen3-0.6B").name == "abc123"


def test_bad_references_are_messages(tmp_path):
    with pytest.raises(ModelError, match="not an alias"):
        resolve_model("nonsense")
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(ModelError, match="cannot load this GGUF file"):
        resolve_model(str(bad))
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(ModelError, match="holds a LoRA adapter"):
        resolve_model(str(tmp_path / "adapter"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a model directory"):
        resolve_model(str(tmp_path / "empty"))


def test_list_models_shows_the_alias():
    names = [row["name"] for row in list_models()]
    assert "gemma-3-270m" in names
