"""`slmtune train` under torchrun: 2 CPU processes (gloo), one run directory, equal weights."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.tiny import tiny_model_dir


def test_two_processes_agree_and_write_one_run(tmp_path):
    model = tiny_model_dir(tmp_path / "model", "gemma3_text")
    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(16))
    )
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [
        str(torchrun),
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        "29533",
        "-m",
        "slmtune.cli",
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
        "--max-steps",
        "3",
        "--batch-size",
        "2",
        "--grad-accum",
        "1",
        "--lr",
        "1e-2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = dict(re.findall(r"\[rank (\d)\] steps 3 weights-checksum ([\d.]+)", out.stdout))
    assert set(ranks) == {"0", "1"} and ranks["0"] == ranks["1"], out.stdout[-2000:]
    assert out.stdout.count("run saved to") == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 3
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
