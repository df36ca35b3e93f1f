"""llama.cpp's tests (`make test-llama`): the main virtualenv, the main suite's network guard
and fixtures, and the binaries `make llama-cpp` built (SLMTUNE_LLAMA_CPP: their folder)."""

from __future__ import annotations

import os
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


def llama_server(gguf: Path, log: Path):
    """llama.cpp's server of this build on `gguf`; a context manager yielding its base URL."""
    from slmtune.llama_cpp import llama_server as serve

    return serve(LLAMA_CPP / "llama-server", gguf, log, extra=("--jinja",))
