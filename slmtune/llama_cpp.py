"""llama.cpp's programs next to slmtune: export's k-quants run its llama-quantize, and its
llama-server answers from a GGUF export (the llama.cpp tests, bench/engines.py).
`make llama-cpp` builds both into the checkout's .llama.cpp/."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from slmtune.errors import ConfigError, SlmtuneError

CHECKOUT = Path(__file__).resolve().parent.parent / ".llama.cpp"  # where `make llama-cpp` builds


def llama_quantize() -> str:
    """llama.cpp's llama-quantize: $SLMTUNE_LLAMA_QUANTIZE, else on PATH, else the one
    `make llama-cpp` built in this checkout."""
    named = os.environ.get("SLMTUNE_LLAMA_QUANTIZE")
    found = named or shutil.which("llama-quantize")
    if not found and (CHECKOUT / "llama-quantize").exists():
        found = str(CHECKOUT / "llama-quantize")
    if not found or not Path(found).is_file():
        where = f"SLMTUNE_LLAMA_QUANTIZE={named} is not a file" if named else "none found"
        raise ConfigError(
            f"k-quants need llama.cpp's llama-quantize ({where}): `make llama-cpp` builds it, "
            "or set SLMTUNE_LLAMA_QUANTIZE to its path; --quant f16 | bf16 | q8_0 | f32 need "
            "nothing more"
        )
    return found


@contextlib.contextmanager
def llama_server(
    binary: str | Path,
    gguf: Path,
    log: Path,
    *,
    slots: int = 1,
    slot_context: int = 2048,
    extra: tuple[str, ...] = (),
) -> Iterator[str]:
    """llama-server on `gguf`, on a free loopback port, its output in `log`; yields its base
    URL once /health answers, stops it on exit. `slots` requests run at once."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threads = str(os.cpu_count())
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
             "-np", str(slots), "-c", str(slots * slot_context), "-t", threads, "-tb", threads,
             "--no-webui",
             "--no-repack",  # its repacked quantized kernels crash (SIGSEGV) on some CPUs
             *extra],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health").status_code == 200:
                        break
                if proc.poll() is not None:
                    raise SlmtuneError(f"llama-server exited: {log.read_text()[-2000:]}")
                time.sleep(0.5)
            else:
                raise SlmtuneError(f"llama-server did not become healthy in 300 s; see {log}")
            yield url
        finally:
            proc.terminate()
            proc.wait(30)
