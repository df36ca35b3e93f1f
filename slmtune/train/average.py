"""`slmtune average`: LoRA runs of one base and one task averaged into one run ("model soup").

The averaged run's weight update is exactly the mean of the runs' updates: PEFT's
`add_weighted_adapter` with combination_type "cat" stacks the adapters (rank = the sum of
their ranks), each weighted 1/N. Two trainings of one task that differ by chance (the seed, a
redraw of the records) or by a setting (LoRA dropout) err in different places, and their
mean errs less than they do on average (Wortsman et al. 2022, "Model soups"; README: The
seed, and averaging runs).

Its schema is learned from all the runs' training records, as `train` learns one; its
tokenizer, template and system prompt are the first run's (they must agree).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from slmtune.config import TrainConfig, load_config
from slmtune.data.load import load_examples
from slmtune.errors import ConfigError
from slmtune.models import load_model, load_tokenizer
from slmtune.run import RunDir, examples_schema, save_run_files, save_schema

SAME = ("base_model", "template", "system_prompt", "last_turn_only")  # one task, one base


def average(runs: list[str], out: str) -> Path:
    """Average finished LoRA runs into the new run directory `out`; returns its path."""
    dirs, out_dir = [RunDir(r) for r in runs], RunDir(out)
    metas = _check(dirs, out_dir)
    examples = [e for run in dirs for e in _training_examples(run)]
    model = _averaged_adapters(metas[0]["base_model"], dirs)
    out_dir.path.mkdir(parents=True, exist_ok=True)
    try:
        save_schema(out_dir.path, examples_schema(examples))
        save_run_files(  # the run file last: a crash here leaves no finished run
            out_dir,
            model=model,
            tokenizer=load_tokenizer(dirs[0].tokenizer),
            meta={**metas[0], "averaged_from": [str(run.path.resolve()) for run in dirs]},
        )
    except BaseException:
        shutil.rmtree(out_dir.path, ignore_errors=True)  # it was empty or absent
        raise
    return out_dir.path


def _averaged_adapters(base_model: str, dirs: list[RunDir]):
    """The base model with one adapter, "default", whose update is the mean of the runs'."""
    from peft import PeftModel

    names = [f"run{i}" for i in range(len(dirs))]
    model = PeftModel.from_pretrained(
        load_model(base_model), dirs[0].adapter, adapter_name=names[0]
    )
    for name, run in zip(names[1:], dirs[1:], strict=True):
        model.load_adapter(run.adapter, adapter_name=name)
    weights = [1 / len(names)] * len(names)
    model.add_weighted_adapter(names, weights, "default", combination_type="cat")
    model.set_adapter("default")
    for name in names:
        model.delete_adapter(name)
    return model


def _check(dirs: list[RunDir], out: RunDir) -> list[dict]:
    """The runs' metadata, once every run is one that can be averaged with the others."""
    if len(dirs) < 2:
        raise ConfigError("average: give two or more runs")
    if out.path.exists() and (not out.path.is_dir() or any(out.path.iterdir())):
        raise ConfigError(f"--out {out.path} is not an empty directory; choose another --out")
    metas = []
    for run in dirs:
        if not run.is_finished():
            raise ConfigError(f"{run.path}: not a finished run (no {run.meta.name})")
        meta = run.read_meta()
        if meta.get("method") != "lora":
            raise ConfigError(f"{run.path}: a {meta.get('method')} run; only LoRA runs average")
        if "averaged_from" in meta:
            raise ConfigError(
                f"{run.path}: already an average; average the runs it was made of instead"
            )
        for key in SAME:
            if metas and meta.get(key) != metas[0].get(key):
                raise ConfigError(
                    f"{run.path}: {key} {meta.get(key)!r} differs from {dirs[0].path}'s "
                    f"{metas[0].get(key)!r}; only runs of one base model and one task average"
                )
        metas.append(meta)
    return metas


def _training_examples(run: RunDir) -> list:
    """The records a run was trained on, read as `train` read them (its config.yaml)."""
    if not run.config.is_file():
        raise ConfigError(f"{run.path}: no {run.config.name}, so its training data is unknown")
    config = load_config(TrainConfig, str(run.config), {})
    data = Path(config.data)
    if not data.exists():
        raise ConfigError(
            f"{run.path}: its training data {data} is not there (run from the directory it was "
            "trained in); the averaged run's schema is learned from every run's training records"
        )
    return load_examples(data, config.format, skip_invalid=config.skip_invalid).examples
