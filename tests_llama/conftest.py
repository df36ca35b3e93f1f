"""llama.cpp's tests (`make test-llama`): the main virtualenv, the main suite's network guard
and fixtures, and the binaries `make llama-cpp` built (SLMTUNE_LLAMA_CPP: their folder)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import *  # noqa: F403  (network guard)
from tests.conftest import pytest_sessionfinish  # noqa: F401
from tests.infer.test_export import real_vocab_run  # noqa: F401  (a run the converter takes)

LLAMA_CPP = Path(os.environ.get("SLMTUNE_LLAMA_CPP", ".llama.cpp"))


@pytest.fixture(scope="session", autouse=True)
def _quantize_from_this_build():
    """export's k-quants use the llama-quantize of the build under test."""
    binary = LLAMA_CPP / "llama-quantize"
    assert binary.is_file(), f"{binary} missing: run `make llama-cpp`"
    os.environ["SLMTUNE_LLAMA_QUANTIZE"] = str(binary)


@contextlib.contextmanager
def llama_server(gguf: Path, log: Path):
    """llama.cpp's server on `gguf`, on a free loopback port; yields its base URL."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(LLAMA_CPP / "llama-server"), "-m", str(gguf), "--host", "127.0.0.1",
             "--port", str(port), "-c", "2048", "-t", "2", "--jinja", "--no-webui",
             "--no-repack"],  # its repacked quantized kernels crash (SIGSEGV) on this CPU
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(240):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                assert proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)
