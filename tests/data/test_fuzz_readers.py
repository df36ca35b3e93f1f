"""The data readers on hostile bytes (hypothesis): every input is records or a DataError that
names the file, never a traceback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from slmtune.data.load import load_examples
from slmtune.errors import SlmtuneError

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
RECORD = json.dumps({"instruction": "我叫张三", "output": '{"name": "张三"}'}, ensure_ascii=False)


def _read(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(data)
        try:
            load_examples(str(path), require_answer=False)
        except SlmtuneError as error:
            assert str(path) in str(error)


@settings(max_examples=200, deadline=None)
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=512))
def test_random_bytes(suffix, data):
    _read(suffix, data)


@settings(max_examples=100, deadline=None)
@given(
    suffix=st.sampled_from(SUFFIXES[:3]),
    cut=st.integers(0, len(RECORD.encode())),
    junk=st.binary(max_size=8),
    depth=st.integers(0, 3000),
)
def test_broken_records_deep_json_and_bad_utf8(suffix, cut, junk, depth):
    good = RECORD.encode()
    lines = [good, good[:cut] + junk + good[cut:], b"[" * depth + b"]" * depth]
    if suffix == ".csv":
        lines = [b"instruction,output", b"x," + b"[" * depth, b"\xff\xfe," + junk]
    _read(suffix, b"\n".join(lines) + b"\n")


def test_a_huge_line_is_read_or_refused_cleanly(tmp_path):
    path = tmp_path / "huge.jsonl"
    path.write_text(json.dumps({"instruction": "长" * 2_000_000, "output": "a"}) + "\n")
    assert len(load_examples(str(path)).examples) == 1
