"""Privacy first: make every library we use stay offline.

Imported by `slmtune/__init__.py` before transformers / huggingface_hub are, because
those read their offline switches at import time. A user who explicitly sets one of these
variables keeps their value.
"""

from __future__ import annotations

import os

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # never ask the hub for files or metadata
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "DO_NOT_TRACK": "1",
    "SWANLAB_MODE": "local",  # SwanLab logs to disk only, never its cloud
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",  # fork-safety with dataloaders; no network either way
}


def go_offline() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
