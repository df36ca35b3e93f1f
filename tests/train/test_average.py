"""`slmtune average`: LoRA runs averaged into one run, through the real CLI and real runs."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from slmtune.cli import app
from slmtune.config import TrainConfig
from slmtune.run import RUN_FILE, RunDir, open_run
from slmtune.train.train import train
from tests.conftest import tiny_model_and_data

runner = CliRunner()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two trainings of one recipe on the same records that differ only by their seed."""
    root = tmp_path_factory.mktemp("average")
    model, data = tiny_model_and_data(root, 12)
    common = dict(model=str(model), data=str(data), max_steps=3, batch_size=4, grad_accum=1)
    common |= dict(lr=1e-2, max_length=128, lora_dropout=0.1)
    return [train(TrainConfig(**common, out=str(root / f"run{s}"), seed=s)) for s in (0, 1)]


def _weights(ref, base_only: bool = False) -> dict[str, torch.Tensor]:
    """A run's weights with its adapter merged, as predict/eval/serve load them (or its base's)."""
    opened = open_run(str(ref), base_only=base_only)
    return {k: v.clone() for k, v in opened.model.state_dict().items()}


def test_the_average_is_the_mean_of_the_runs_weight_updates(two_runs, tmp_path):
    out = tmp_path / "avg"
    result = runner.invoke(app, ["average", *map(str, two_runs), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert RunDir(out).is_finished()
    meta = json.loads((out / RUN_FILE).read_text())
    assert meta["averaged_from"] == [str(r.resolve()) for r in two_runs]
    assert meta["method"] == "lora"
    assert (out / "schema.json").read_text() == (two_runs[0] / "schema.json").read_text()

    base = _weights(two_runs[0], base_only=True)
    a, b, avg = _weights(two_runs[0]), _weights(two_runs[1]), _weights(out)
    moved = [k for k in base if not torch.equal(a[k], b[k])]
    assert moved, "the two trainings should differ"
    for k in moved:
        mean_update = (a[k] - base[k] + b[k] - base[k]) / 2
        assert torch.allclose(avg[k] - base[k], mean_update, atol=1e-6), k
    assert not all(torch.allclose(avg[k], a[k], atol=1e-6) for k in moved)


def test_what_cannot_be_averaged_is_a_clear_error(two_runs, tmp_path):
    def run_copy(name, **meta_changes):
        path = tmp_path / name
        shutil.copytree(two_runs[1], path)
        meta = json.loads((path / RUN_FILE).read_text()) | meta_changes
        (path / RUN_FILE).write_text(json.dumps(meta))
        return path

    unfinished = tmp_path / "unfinished"
    shutil.copytree(two_runs[1], unfinished)
    (unfinished / RUN_FILE).unlink()
    full = run_copy("full", method="full")
    other_task = run_copy("other_task", system_prompt="另一个任务")
    averaged = run_copy("averaged", averaged_from=["x", "y"])
    no_data = run_copy("no_data")
    config = (no_data / "config.yaml").read_text()
    (no_data / "config.yaml").write_text(config.replace(str(tmp_path.parent), "/gone"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")

    a = str(two_runs[0])
    cases = {
        (a,): "give two or more runs",
        (a, str(unfinished)): f"{unfinished}: not a finished run",
        (a, str(full)): f"{full}: a full run; only LoRA runs average",
        (a, str(other_task)): f"{other_task}: system_prompt '另一个任务' differs",
        (a, str(averaged)): f"{averaged}: already an average",
        (a, str(no_data)): f"{no_data}: its training data /gone/",
    }
    for runs, message in cases.items():
        out = tmp_path / "out"
        result = runner.invoke(app, ["average", *runs, "--out", str(out)])
        assert result.exit_code == 1, runs
        assert message in result.output, (message, result.output)
        assert "Traceback" not in result.output
        assert not out.exists(), runs  # nothing half-written

    result = runner.invoke(app, ["average", a, str(two_runs[1]), "--out", str(busy)])
    assert result.exit_code == 1 and f"--out {busy} is not an empty directory" in result.output
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
