"""`slmtune predict` and `slmtune chat`: answer with a run exactly as it was trained."""

from __future__ import annotations

import json
import os
from pathlib import Path

from slmtune.data.load import load_examples
from slmtune.data.types import Message
from slmtune.infer.generate import GenerationConfig, build_messages, generate
from slmtune.infer.schema import decoding_schema
from slmtune.runs import load_for_inference


def predict_text(
    run: str,
    text: str,
    *,
    system: str | None = None,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    constrain: bool = True,
    schema_file: str | None = None,
) -> str:
    loaded = load_for_inference(run)
    prompt = build_messages(text, system if system is not None else loaded.system_prompt)
    cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        batch_size=1,
        temperature=temperature,
        schema=decoding_schema(loaded, schema_file, constrain),
    )
    return generate(loaded, [prompt], cfg)[0]


def predict_file(
    run: str,
    path: str,
    out: str | None,
    *,
    system: str | None = None,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    temperature: float = 0.0,
    constrain: bool = True,
    schema_file: str | None = None,
) -> int:
    """Answer every record of a data file; its own system prompt wins, else the run's."""
    loaded = load_for_inference(run)
    examples = load_examples(path, require_answer=False).examples
    prompts = []
    for e in examples:
        messages = e.prompt_messages
        if system is not None:
            messages = [m for m in messages if m.role != "system"]
            messages = [Message("system", system), *messages]
        elif loaded.system_prompt and not any(m.role == "system" for m in messages):
            messages = [Message("system", loaded.system_prompt), *messages]
        prompts.append(messages)
    cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        temperature=temperature,
        schema=decoding_schema(loaded, schema_file, constrain),
    )
    answers = generate(loaded, prompts, cfg)
    rows = [
        {
            "source": e.source,
            **e.meta,
            "input": e.prompt_messages[-1].content,
            "reference": e.answer,
            "prediction": a,
        }
        for e, a in zip(examples, answers, strict=True)
    ]
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


def chat_loop(run: str, *, system: str | None = None, max_new_tokens: int = 256) -> None:
    loaded = load_for_inference(run)
    system = system if system is not None else loaded.system_prompt
    history: list[Message] = []
    cfg = GenerationConfig(max_new_tokens=max_new_tokens, batch_size=1)
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
        prompt = ([Message("system", system)] if system else []) + history
        answer = generate(loaded, [prompt], cfg)[0]
        history.append(Message("assistant", answer))
        print(f"model> {answer}")
