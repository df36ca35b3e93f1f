"""`slmtune serve`: load the models, build the app, run uvicorn. Loopback unless a key is set."""

from __future__ import annotations

import ipaddress

from slmtune.errors import ConfigError
from slmtune.serve.app import Limits, create_app
from slmtune.serve.models import ModelPool


def parse_adapters(specs: list[str]) -> dict[str, str]:
    adapters = {}
    for spec in specs:
        name, sep, run = spec.partition("=")
        if not sep or not name or not run:
            raise ConfigError(f"--adapter {spec}: expected NAME=RUN_DIR")
        if name in adapters:
            raise ConfigError(f"--adapter {spec}: the name '{name}' is used twice")
        adapters[name] = run
    return adapters


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_app(
    ref: str,
    *,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    adapters: list[str] | None = None,
    name: str | None = None,
    limits: Limits | None = None,
    max_batch: int = 32,
    max_wait_ms: int = 20,
    max_queue: int = 256,
):
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"--host {host} is reachable from other machines; set --api-key (or "
            "SLMTUNE_API_KEY) to serve beyond 127.0.0.1"
        )
    pool = ModelPool(ref, parse_adapters(adapters or []), name=name)
    app = create_app(
        pool,
        api_key=api_key,
        limits=limits,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
    )
    return app, pool


def serve(ref: str, *, host: str = "127.0.0.1", port: int = 8000, **options) -> None:
    import uvicorn

    app, pool = build_app(ref, host=host, **options)
    print(f"serving {', '.join(pool.names)} on http://{host}:{port}/v1", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
