"""Fixtures shared by the server tests."""

from __future__ import annotations

import pytest

from tests.serve.harness import short_run_copy


@pytest.fixture(scope="module")
def short_run(tiny_run, tmp_path_factory):
    """The tiny run with a short-string schema, so /v1/extract answers finish."""
    return short_run_copy(tiny_run, tmp_path_factory.mktemp("short") / "run")
