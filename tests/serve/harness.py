"""A real server for the tests: uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import openai
import uvicorn

from tests.tiny import SHORT_SCHEMA as SHORT  # noqa: F401  (the server tests' schema)

KEY = "test-key-123"


class Server:
    """uvicorn in a thread on a free loopback port; stopped at teardown."""

    def __init__(self, app):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, key: str | None = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or "none", max_retries=0)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def short_run_copy(tiny_run, run):
    """The tiny run with SHORT as its schema, name and email copied from the input (as
    training marks them)."""
    shutil.copytree(tiny_run, run)
    schema = json.loads(json.dumps(SHORT))
    for key in ("name", "email"):
        schema["properties"][key]["verbatim"] = True
    (run / "schema.json").write_text(json.dumps(schema))
    return run
