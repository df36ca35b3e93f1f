"""Test-wide guards.

Privacy is the product: every test runs with outbound connections refused. Any attempt to
reach a non-loopback address raises and is recorded, so a library that swallows the error
is still caught by `network_attempts`.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

import slmtune  # noqa: F401  (sets the offline switches before transformers is imported)

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
