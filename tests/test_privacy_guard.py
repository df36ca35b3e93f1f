"""The test suite's own privacy guard: on from import, DNS included, over the whole session."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import socket

import pytest


def test_a_library_that_swallows_the_refusals(network_attempts):
    for call in (lambda: socket.getaddrinfo("huggingface.co", 443),
                 lambda: socket.create_connection(("10.0.0.1", 80), timeout=1)):
        try:
            call()
        except OSError:
            pass
    assert network_attempts == ["DNS lookup of 'huggingface.co'",
                                "connection to ('10.0.0.1', 80)"]
"""


def test_attempts_are_refused_recorded_and_fail_the_whole_run(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", str(probe)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "1 passed" in run.stdout, run.stdout  # the probe's own assertions held
    assert "outbound network attempts were made" in run.stdout
    assert run.returncode == pytest.ExitCode.TESTS_FAILED  # though every test passed
