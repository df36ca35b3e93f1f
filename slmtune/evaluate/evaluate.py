"""`slmtune eval`: generate for every test record with the training template, then score.

With `--with-base` (or `--compare MODEL`) the same prompts go through a second model and
both land side by side in one report: the seeds' "test before and after fine-tuning",
made measurable.
"""

from __future__ import annotations

import time
from pathlib import Path

from slmtune.config import DecodeConfig
from slmtune.data.load import load_examples
from slmtune.data.types import Example, last_user_text
from slmtune.errors import SlmtuneError
from slmtune.evaluate.metrics import score
from slmtune.evaluate.report import format_table, write_predictions, write_report
from slmtune.infer.driver import answer_all, requests_for
from slmtune.run import OpenRun, RunDir, is_run_dir, load_schema, open_run, parse_json_answer
from slmtune.run.answer import spans, ungrounded, verbatim_paths
from slmtune.run.schema import run_schema


def evaluate(
    target: str,
    data: str,
    out: str | None = None,
    cfg: DecodeConfig | None = None,
    *,
    limit: int | None = None,
    with_base: bool = False,
    compare: str | None = None,
    compare_unconstrained: bool = False,
    quiet: bool = False,
) -> dict:
    """Evaluate `target` (and optionally a baseline) on `data`; returns {label: metrics}."""
    cfg = cfg or DecodeConfig()
    constrain = cfg.constrain
    examples = load_examples(data).examples[:limit]
    if not examples:
        raise SlmtuneError(f"{data}: no records to evaluate")
    out_dir = Path(out or (RunDir(target).eval if is_run_dir(target) else "eval_out"))
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
    sources = [last_user_text(e.prompt_messages) or "" for e in examples]
    verbatim = verbatim_paths(_target_schema(target, cfg.schema_file))
    for label, how in contenders:
        opened = open_run(how["ref"], base_only=how["base_only"])
        how_cfg = cfg.model_copy(update={"constrain": how["constrain"]})
        start = time.time()
        predictions, constrained = _answer_all(opened, examples, how_cfg, label, quiet)
        seconds = time.time() - start
        metrics = score(references, predictions)
        metrics["records_per_second"] = round(len(examples) / max(seconds, 1e-9), 3)
        metrics["constrained"] = constrained
        found = [_grounding(p, s, verbatim) for p, s in zip(predictions, sources, strict=True)]
        if verbatim:  # answers with a copied field that is not in their input: should be 0
            metrics["ungrounded"] = sum(bool(bad) for _, bad in found)
        runs[label] = metrics
        rows[label] = _prediction_rows(examples, predictions, metrics, found)
        is_target = label == contenders[-1][0]
        write_predictions(out_dir / _predictions_name(label, is_target), rows[label])
        del opened  # free the model before loading the next one

    paths = write_report(out_dir, runs, rows, title=f"slmtune eval: {target} on {data}")
    if not quiet:
        print(format_table(runs))
        print(f"report: {paths.get('html', out_dir / 'report.html')}")
    return runs


def _answer_all(
    opened: OpenRun, examples: list[Example], cfg: DecodeConfig, label: str, quiet: bool
) -> tuple[list[str], bool]:
    """The answers to every example, and whether they were schema-constrained."""
    from tqdm.auto import tqdm

    requests = requests_for(opened, [e.prompt_messages for e in examples], cfg)
    bar = tqdm(total=len(requests), desc=f"eval {label}", unit="rec", disable=quiet)
    answers = answer_all(opened, requests, cfg.batch_size, progress=bar.update)
    bar.close()
    return [a.text for a in answers], requests[0].schema is not None


def _target_schema(target: str, schema_file: str | None) -> dict | None:
    """The answer schema evaluated against: --schema, else the run's (None: not a run)."""
    if schema_file:
        return load_schema(schema_file)
    return run_schema(target) if is_run_dir(target) else None


def _grounding(prediction: str, source: str, verbatim: tuple) -> tuple[dict, list[str]]:
    """(spans of the verbatim values, the verbatim fields not found in the input)."""
    if not verbatim:
        return {}, []
    answer = parse_json_answer(prediction)[0]
    return spans(answer, source, verbatim), ungrounded(answer, source, verbatim)


def _prediction_rows(
    examples: list[Example], predictions: list[str], metrics: dict, found: list[tuple]
) -> list[dict]:
    verdicts = metrics.get("per_record", [{}] * len(examples))
    rows = []
    for e, p, v, (located, bad) in zip(examples, predictions, verdicts, found, strict=True):
        row = {"source": e.source, "input": e.prompt_messages[-1].content}
        row |= {"reference": e.answer, "prediction": p, **v}
        if located:
            row["spans"] = located
        if bad:
            row["ungrounded"] = bad
        rows.append(row)
    return rows


def _predictions_name(label: str, is_target: bool) -> str:
    if is_target:
        return "predictions.jsonl"
    safe = "".join(c if c.isalnum() else "_" for c in label).strip("_")
    return f"predictions_{safe}.jsonl"
