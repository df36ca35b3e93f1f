"""The run: the contract between training and everything after it.

layout.py  where a run's files are (RunDir), saving them, telling a finished run apart
schema.py  the answer schema learned from the training answers (RUN/schema.json)
answer.py  reading a model's JSON answer
open.py    opening a run or model for answering (OpenRun), with or without weights
"""

from slmtune.run.answer import parse_json_answer
from slmtune.run.layout import RUN_FILE, SCHEMA_FILE, RunDir, is_run_dir, save_run_files
from slmtune.run.open import OpenRun, model_renderer, open_renderer, open_run
from slmtune.run.schema import (
    decoding_schema,
    examples_schema,
    infer_schema,
    load_schema,
    save_schema,
)

__all__ = [
    "RUN_FILE",
    "SCHEMA_FILE",
    "OpenRun",
    "RunDir",
    "decoding_schema",
    "examples_schema",
    "infer_schema",
    "is_run_dir",
    "load_schema",
    "model_renderer",
    "open_renderer",
    "open_run",
    "parse_json_answer",
    "save_run_files",
    "save_schema",
]
