"""`slmtune predict` and `slmtune chat`: answer with a run exactly as it was trained."""

from __future__ import annotations

import json
import os
from pathlib import Path

from slmtune.config import DecodeConfig
from slmtune.data.load import load_examples
from slmtune.data.types import Message
from slmtune.infer.driver import answer_all, requests_for, source_of
from slmtune.run import open_run, parse_json_answer
from slmtune.run.answer import spans, verbatim_paths


def predict_text(run: str, text: str, cfg: DecodeConfig | None = None) -> str:
    cfg = cfg or DecodeConfig()
    opened = open_run(run)
    return answer_all(opened, requests_for(opened, [text], cfg), batch_size=1)[0].text


def predict_file(run: str, path: str, out: str | None, cfg: DecodeConfig | None = None) -> int:
    """Answer every record of a data file; its own system prompt wins, else the run's."""
    cfg = cfg or DecodeConfig()
    opened = open_run(run)
    examples = load_examples(path, require_answer=False).examples
    requests = requests_for(opened, [e.prompt_messages for e in examples], cfg)
    answers = answer_all(opened, requests, cfg.batch_size)
    verbatim = verbatim_paths(requests[0].schema) if requests else ()
    rows = []
    for e, request, a in zip(examples, requests, answers, strict=True):
        row = {"source": e.source, **e.meta, "input": e.prompt_messages[-1].content}
        row |= {"reference": e.answer, "prediction": a.text}
        if verbatim:
            row["spans"] = spans(parse_json_answer(a.text)[0], source_of(request), verbatim)
        rows.append(row)
    if out is None:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        tmp = Path(f"{out}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, out)
    return len(rows)


def chat_loop(run: str, cfg: DecodeConfig | None = None) -> None:
    cfg = (cfg or DecodeConfig()).model_copy(update={"constrain": False})  # free conversation
    opened = open_run(run)
    history: list[Message] = []
    print("slmtune chat — empty line or Ctrl-D quits, /reset clears the history")
    while True:
        try:
            line = input("you> ").strip()
        except EOFError:
            break
        if not line:
            break
        if line == "/reset":
            history = []
            continue
        history.append(Message("user", line))
        answer = answer_all(opened, requests_for(opened, [history], cfg), batch_size=1)[0].text
        history.append(Message("assistant", answer))
        print(f"model> {answer}")
