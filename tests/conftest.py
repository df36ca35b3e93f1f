"""Test-wide guards.

Privacy is the product: from the moment this file is imported (before any fixture builds a
model or trains a run) until the session ends, outbound connections and DNS lookups of
non-local names are refused and recorded. A library that swallows the error is still
caught: any attempt anywhere in the session fails the run (pytest_sessionfinish), and
`network_attempts` gives a test the attempts made while it ran.
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

SESSION_ATTEMPTS: list[str] = []  # every refused attempt of the whole run
NETWORK_ATTEMPTS: list[str] = []  # those since the current test started
LOCAL_NAMES = {"localhost", "", None, "localhost.localdomain", "testserver"}
_real = {
    "connect": socket.socket.connect,
    "connect_ex": socket.socket.connect_ex,
    "getaddrinfo": socket.getaddrinfo,
    "gethostbyname": socket.gethostbyname,
}


def _is_local(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a name that would need DNS: not local


def _refuse(what: str):
    SESSION_ATTEMPTS.append(what)
    NETWORK_ATTEMPTS.append(what)
    raise ConnectionRefusedError(f"slmtune tests: outbound {what} refused")


def _connect(real):
    def connect(self, address):
        if not isinstance(address, (str, bytes)) and not _is_local(address[0]):
            _refuse(f"connection to {address!r}")
        return real(self, address)

    return connect


def _is_name(host) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host)
        return False
    except (ValueError, UnicodeDecodeError):
        return True


def _getaddrinfo(host, *args, **kwargs):
    if host is not None and _is_name(host) and not _is_local(host):
        _refuse(f"DNS lookup of {host!r}")
    return _real["getaddrinfo"](host, *args, **kwargs)


def _gethostbyname(host):
    if _is_name(host) and not _is_local(host):
        _refuse(f"DNS lookup of {host!r}")
    return _real["gethostbyname"](host)


socket.socket.connect = _connect(_real["connect"])
socket.socket.connect_ex = _connect(_real["connect_ex"])
socket.getaddrinfo = _getaddrinfo
socket.gethostbyname = _gethostbyname


def pytest_sessionfinish(session, exitstatus):
    if SESSION_ATTEMPTS:
        print("\nslmtune tests: outbound network attempts were made:")
        for attempt in SESSION_ATTEMPTS:
            print(f"  {attempt}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def network_attempts():
    """The refused outbound attempts made during the test (its fixtures included)."""
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


def tiny_model_and_data(root, n: int):
    """A tiny Gemma-3 model directory and n complaint records to train it on, under root."""
    model = tiny_model_dir(root / "model", "gemma3_text", None)
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in complaint_rows(n)))
    return model, data


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_run")
    model, data = tiny_model_and_data(root, 16)
    cfg = TrainConfig(
        model=str(model),
        data=str(data),
        out=str(root / "run"),
        max_steps=2,
        batch_size=4,
        grad_accum=1,
        lr=1e-3,
        max_length=128,
        augment=0,  # the tests below were written against this tiny run's answers
    )
    return train(cfg)


@pytest.fixture(scope="module")
def short_run(tiny_run, tmp_path_factory):
    """The tiny run with a short-string schema, so its JSON answers finish (serve, label)."""
    from tests.serve.harness import short_run_copy

    return short_run_copy(tiny_run, tmp_path_factory.mktemp("short") / "run")
