"""`slmtune serve`: load the models, build the app, run uvicorn. Loopback unless a key is set."""

from __future__ import annotations

import ipaddress

from slmtune.config import ServeConfig
from slmtune.errors import ConfigError
from slmtune.serve.app import create_app
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
    cfg: ServeConfig | None = None,
    *,
    api_key: str | None = None,
    adapters: list[str] | None = None,
):
    cfg = cfg or ServeConfig()
    if not is_loopback(cfg.host) and not api_key:
        raise ConfigError(
            f"--host {cfg.host} is reachable from other machines; set --api-key (or "
            "SLMTUNE_API_KEY) to serve beyond 127.0.0.1"
        )
    pool = ModelPool(ref, parse_adapters(adapters or []), name=cfg.name)
    return create_app(pool, cfg, api_key=api_key), pool


def serve(ref: str, cfg: ServeConfig, *, api_key: str | None, adapters: list[str]) -> None:
    import uvicorn

    app, pool = build_app(ref, cfg, api_key=api_key, adapters=adapters)
    print(f"serving {', '.join(pool.served)} on http://{cfg.host}:{cfg.port}/v1", flush=True)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning")
