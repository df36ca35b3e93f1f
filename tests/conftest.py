"""Test-wide guards.

Privacy is the product: every test runs with outbound connections refused. Any attempt to
reach a non-loopback address raises and is recorded, so a library that swallows the error
is still caught by `network_attempts`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket

import pytest

import slmtune  # noqa: F401  (sets the offline switches before transformers is imported)
from slmtune.config import TrainConfig
from slmtune.train.train import train
from tests.tiny import tiny_model_dir

NETWORK_ATTEMPTS: list[str] = []
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname that would need DNS: not local


def _guarded(real):
    def connect(self, address):
        if not _is_local(address):
            NETWORK_ATTEMPTS.append(repr(address))
            raise ConnectionRefusedError(
                f"slmtune tests: outbound connection to {address!r} refused"
            )
        return real(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def refuse_outbound_connections():
    socket.socket.connect = _guarded(_real_connect)
    socket.socket.connect_ex = _guarded(_real_connect_ex)
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex


@pytest.fixture
def network_attempts():
    """The list of refused outbound connection attempts made during the test."""
    NETWORK_ATTEMPTS.clear()
    yield NETWORK_ATTEMPTS


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


# -- a tiny trained run, shared by the inference, export and server tests -----------------


def complaint_rows(n: int) -> list[dict]:
    return [
        {
            "system": "提取json",
            "instruction": f"我叫用户{i}，邮箱u{i}@qq.com",
            "input": "",
            "output": json.dumps(
                {"name": f"用户{i}", "email": f"u{i}@qq.com", "vip": i % 2 == 0},
                ensure_ascii=False,
            ),
        }
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_run")
    model = tiny_model_dir(root / "model", "gemma3_text", None)
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in complaint_rows(16)))
    cfg = TrainConfig(
        model=str(model),
        data=str(data),
        out=str(root / "run"),
        max_steps=2,
        batch_size=4,
        grad_accum=1,
        lr=1e-3,
        max_length=128,
    )
    return train(cfg)
