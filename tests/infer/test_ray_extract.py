"""`extract --engine ray` on a real local Ray cluster (2 CPUs, loopback, no dashboard, no
usage statistics): the same lines as local extract, a killed worker survived, a killed driver
resumed from its committed shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
import ray  # make setup installs the `ray` extra: these tests always run

from slmtune.config import ExtractConfig
from slmtune.infer.extract import extract


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=False, logging_level="WARNING")  # fmt: skip
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    path = tmp_path_factory.mktemp("ray") / "in.jsonl"
    rows = [{"id": i, "text": f"我叫用户{i}，邮箱u{i}@qq.com"} for i in range(10)]
    rows[4] = {"id": 4, "body": "no text field"}
    rows[7] = {"id": 7, "text": "  "}
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def local_lines(short_run, records, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out.jsonl"
    extract(str(short_run), str(records), str(out), ExtractConfig(batch_size=4), quiet=True)
    return out.read_text().splitlines()


def ray_config(**extra) -> ExtractConfig:
    return ExtractConfig(
        batch_size=4, engine="ray", workers=2, worker_cpus=1, shard_records=3, **extra
    )


def _map_workers() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if "MapWorker(MapBatches(ShardWorker))" in " ".join(p.info["cmdline"] or []):
            found.append(p)
    return found


def test_same_lines_as_local_extract_with_a_worker_killed_midway(
    cluster, short_run, records, local_lines, tmp_path
):
    killed = []

    def kill_one_worker():
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            workers = _map_workers()
            if len(workers) == 2:  # both up: kill one while the shards are being answered
                time.sleep(1.0)
                workers[0].send_signal(signal.SIGKILL)
                killed.append(workers[0].pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    out = tmp_path / "out.jsonl"
    summary = extract(str(short_run), str(records), str(out), ray_config(), quiet=True)
    killer.join()
    assert killed, "no worker was killed: the test proved nothing"
    assert out.read_text().splitlines() == local_lines
    assert summary["records"] == 10 and summary["failed"] == 2 and summary["workers"] == 2
    assert not (tmp_path / "out.jsonl.shards").exists()  # merged, then cleaned up


def test_a_killed_driver_resumes_from_its_committed_shards(
    cluster, short_run, records, local_lines, tmp_path
):
    out = tmp_path / "out.jsonl"
    command = [
        sys.executable, "-m", "slmtune.cli", "extract", str(short_run), "--input", str(records),
        "--output", str(out), "--engine", "ray", "--workers", "1", "--worker-cpus", "1",
        "--shard-records", "3", "--batch-size", "4",
        "--ray-address", ray.get_runtime_context().gcs_address,  # joins the test's cluster
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    job = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shards = tmp_path / "out.jsonl.shards"
    deadline = time.time() + 180
    while time.time() < deadline and not list(shards.glob("*.jsonl")):
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    committed = sorted(p.name for p in shards.glob("*.jsonl"))
    assert committed and len(committed) < 4, "the driver should have died midway"
    assert not out.exists()  # OUTPUT appears only whole, at the end

    cfg = ExtractConfig(batch_size=4, engine="ray", workers=1, worker_cpus=1, shard_records=3)
    summary = extract(str(short_run), str(records), str(out), cfg, quiet=True)
    assert out.read_text().splitlines() == local_lines
    assert summary["resumed_after"] == 3 * len(committed)
    assert summary["answered_now"] == 10 - 3 * len(committed)


def test_without_ray_the_message_says_how_to_get_it(short_run, records, tmp_path, monkeypatch):
    from slmtune.errors import SlmtuneError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(SlmtuneError, match=r"pip install 'slmtune\[ray\]'"):
        extract(str(short_run), str(records), str(tmp_path / "o.jsonl"), ray_config(), quiet=True)
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "o.jsonl.state.json").exists()
