"""Server load test: `slmtune serve` driven by the official `openai` client at 1, 8, 32 clients.

Starts the server as its own process on a loopback port (the demo run by default), then for
each concurrency level runs that many client threads, each sending `--requests` chat
completions in a row (complaint texts, `response_format: json_object`, so answers are
constrained to the run's schema). Prints requests/s, generated tokens/s, p50/p95 latency and
errors per level, and throughput at 32 clients relative to one client; writes
bench/results/serve_load.json.

`--soak SECONDS` instead runs 32 clients for that long and reports errors (the issue's
5-minute check: --soak 300). Not part of CI.

Usage: python bench/serve_load.py [--run demo_out/run] [--levels 1 8 32] [--requests 3]
                               [--max-tokens 256] [--soak 300]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import slmtune  # noqa: F401  (offline switches first)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(ROOT / "demo_out" / "run"))
    p.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--requests", type=int, default=3, help="requests per client per level")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--soak", type=int, default=0, help="seconds of 32 clients instead")
    args = p.parse_args()

    from slmtune.data.load import load_examples
    from slmtune.data.synth import synthesize, write_jsonl

    work = RESULTS / "work"
    work.mkdir(parents=True, exist_ok=True)
    write_jsonl(synthesize("complaints", 64, seed=4), work / "serve_records.jsonl")
    texts = [
        e.prompt_messages[-1].content for e in load_examples(work / "serve_records.jsonl").examples
    ]

    port = _free_port()
    log = (work / "serve_stderr.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "slmtune.cli", "serve", args.run, "--port", str(port),
         "--name", "demo", "--max-batch", "32"],
        stdout=subprocess.DEVNULL, stderr=log, env={**os.environ},
    )  # fmt: skip
    try:
        base = _wait_ready(port, server, work / "serve_stderr.log")
        levels = [32] if args.soak else args.levels
        results = {}
        for level in levels:
            results[level] = run_level(base, texts, level, args)
            r = results[level]
            print(
                f"{level:>3} clients: {r['requests']} requests, {r['requests_per_second']:.3f} req/s, "
                f"{r['tokens_per_second']:.1f} tok/s, p50 {r['p50_s']:.1f} s, "
                f"p95 {r['p95_s']:.1f} s, errors {r['errors']}, cut at max_tokens "
                f"{r['cut_at_max_tokens']}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    report = {"run": args.run, "max_tokens": args.max_tokens, "levels": results}
    if 1 in results and max(results) > 1:
        top = max(results)
        ratio = results[top]["requests_per_second"] / results[1]["requests_per_second"]
        report["throughput_ratio"] = {f"{top}_vs_1": round(ratio, 2)}
        print(f"\nthroughput at {top} clients / 1 client: {ratio:.2f}x")
    name = "serve_soak.json" if args.soak else "serve_load.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")


def run_level(base: str, texts: list[str], clients: int, args) -> dict:
    import openai

    latencies, tokens, errors, cut = [], [0], [], [0]
    lock = threading.Lock()
    stop_at = time.time() + args.soak if args.soak else None

    def client_loop(k: int) -> None:
        client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=3600)
        sent = 0
        while (stop_at and time.time() < stop_at) or (not stop_at and sent < args.requests):
            text = texts[(k * args.requests + sent) % len(texts)]
            start = time.time()
            try:
                reply = client.chat.completions.create(
                    model="demo",
                    messages=[{"role": "user", "content": text}],
                    max_tokens=args.max_tokens,
                    response_format={"type": "json_object"},
                )
                with lock:
                    latencies.append(time.time() - start)
                    tokens[0] += reply.usage.completion_tokens
                    if reply.choices[0].finish_reason == "length":
                        cut[0] += 1  # the model's answer ran past max_tokens: not a server error
                    else:
                        json.loads(reply.choices[0].message.content)  # must be valid JSON
            except Exception as exc:  # counted, reported, never hidden
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
            sent += 1

    start = time.time()
    threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.time() - start
    ordered = sorted(latencies) or [float("nan")]
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "cut_at_max_tokens": cut[0],
        "error_samples": errors[:3],
        "seconds": round(seconds, 1),
        "requests_per_second": round(len(latencies) / seconds, 4),
        "tokens_per_second": round(tokens[0] / seconds, 2),
        "p50_s": round(statistics.median(ordered), 2),
        "p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(port: int, server: subprocess.Popen, log: Path) -> str:
    import httpx

    deadline = time.time() + 300
    while time.time() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return f"http://127.0.0.1:{port}/v1"
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("server did not become ready in 300 s")


if __name__ == "__main__":
    main()
