"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis over hypothesis): whatever a
client sends, the server answers with a status below 500, no traceback, in bounded time."""

from __future__ import annotations

import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from slmtune.config import ServeConfig
from slmtune.serve.server import build_app
from tests.serve.harness import KEY, Server

EXAMPLES = 40  # per operation; the whole fuzz stays within a minute on 2 cores
SECONDS = 30  # one answer of at most 16 tokens from the tiny model


@pytest.fixture(scope="module")
def fuzzed(short_run):
    cfg = ServeConfig(name="tiny", max_tokens_cap=16, max_body_kb=8)
    app, _ = build_app(str(short_run), cfg, api_key=KEY)
    server = Server(app)
    yield server, app.openapi()  # the app does not publish it (openapi_url=None): taken here
    server.stop()


def test_no_request_breaks_the_server(fuzzed):
    server, spec = fuzzed
    operations = [
        result.ok() for result in schemathesis.openapi.from_dict(spec).get_all_operations()
    ]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/extract"}
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case):
            start = time.time()
            response = case.call(
                base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=SECONDS
            )
            where = f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
            assert response.status_code < 500, where
            assert "Traceback" not in response.text, where
            assert time.time() - start < SECONDS, where

        call()
