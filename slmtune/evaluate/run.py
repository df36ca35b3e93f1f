"""`slmtune eval`: generate for every test record with the training template, then score.

With `--with-base` (or `--compare MODEL`) the same prompts go through a second model and
both land side by side in one report: the seeds' "test before and after fine-tuning",
made measurable.
"""

from __future__ import annotations

import time
from pathlib import Path

from slmtune.data.load import load_examples
from slmtune.data.types import Example, Message
from slmtune.errors import SlmtuneError
from slmtune.evaluate.metrics import score
from slmtune.evaluate.report import format_table, write_predictions, write_report
from slmtune.infer.generate import GenerationConfig, generate
from slmtune.infer.schema import decoding_schema
from slmtune.runs import Loaded, is_run_dir, load_for_inference


def evaluate(
    target: str,
    data: str,
    out: str | None = None,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    with_base: bool = False,
    compare: str | None = None,
    constrain: bool = True,
    schema_file: str | None = None,
    compare_unconstrained: bool = False,
    quiet: bool = False,
) -> dict:
    """Evaluate `target` (and optionally a baseline) on `data`; returns {label: metrics}."""
    examples = load_examples(data).examples[:limit]
    if not examples:
        raise SlmtuneError(f"{data}: no records to evaluate")
    out_dir = Path(out or (Path(target) / "eval" if is_run_dir(target) else "eval_out"))
    out_dir.mkdir(parents=True, exist_ok=True)

    contenders: list[tuple[str, dict]] = []
    if with_base:
        if not is_run_dir(target):
            raise SlmtuneError(
                "--with-base needs a run directory (it compares the run with its base)"
            )
        contenders.append(("base", {"ref": target, "base_only": True, "constrain": constrain}))
    if compare:
        how = {"ref": compare, "base_only": False, "constrain": constrain}
        contenders.append((f"compare: {compare}", how))
    label = "fine-tuned" if is_run_dir(target) else target
    if compare_unconstrained and constrain:
        how = {"ref": target, "base_only": False, "constrain": False}
        contenders.append((f"{label} (unconstrained)", how))
    contenders.append((label, {"ref": target, "base_only": False, "constrain": constrain}))

    runs: dict[str, dict] = {}
    rows: dict[str, list[dict]] = {}
    references = [e.answer or "" for e in examples]
    for label, how in contenders:
        loaded = load_for_inference(how["ref"], base_only=how["base_only"])
        cfg = GenerationConfig(
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            schema=decoding_schema(loaded, schema_file, how["constrain"]),
        )
        start = time.time()
        predictions = _generate_all(loaded, examples, cfg, label, quiet)
        seconds = time.time() - start
        metrics = score(references, predictions)
        metrics["records_per_second"] = round(len(examples) / max(seconds, 1e-9), 3)
        metrics["constrained"] = cfg.schema is not None
        runs[label] = metrics
        rows[label] = _prediction_rows(examples, predictions, metrics)
        is_target = label == contenders[-1][0]
        write_predictions(out_dir / _predictions_name(label, is_target), rows[label])
        del loaded  # free the model before loading the next one

    paths = write_report(out_dir, runs, rows, title=f"slmtune eval: {target} on {data}")
    if not quiet:
        print(format_table(runs))
        print(f"report: {paths.get('html', out_dir / 'report.html')}")
    return runs


def _generate_all(
    loaded: Loaded,
    examples: list[Example],
    cfg: GenerationConfig,
    label: str,
    quiet: bool,
) -> list[str]:
    from tqdm.auto import tqdm

    prompts = [_with_system(e.prompt_messages, loaded.system_prompt) for e in examples]
    bar = tqdm(total=len(prompts), desc=f"eval {label}", unit="rec", disable=quiet)
    answers = generate(loaded, prompts, cfg, progress=bar.update)
    bar.close()
    return answers


def _with_system(messages: list[Message], system_prompt: str | None) -> list[Message]:
    """Records carry their own system prompt; bare texts get the run's, as in training."""
    if system_prompt and not any(m.role == "system" for m in messages):
        return [Message("system", system_prompt), *messages]
    return messages


def _prediction_rows(examples: list[Example], predictions: list[str], metrics: dict) -> list[dict]:
    verdicts = metrics.get("per_record", [{}] * len(examples))
    return [
        {
            "source": e.source,
            "input": e.prompt_messages[-1].content,
            "reference": e.answer,
            "prediction": p,
            **v,
        }
        for e, p, v in zip(examples, predictions, verdicts, strict=True)
    ]


def _predictions_name(label: str, is_target: bool) -> str:
    if is_target:
        return "predictions.jsonl"
    safe = "".join(c if c.isalnum() else "_" for c in label).strip("_")
    return f"predictions_{safe}.jsonl"
