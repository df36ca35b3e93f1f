"""The CLI through its real entry point: exit codes and exact messages, never a traceback."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from slmtune.cli import app
from tests.tiny import tiny_model_dir

runner = CliRunner()


def test_every_command_has_help_with_an_example():
    for cmd in (
        ["train"],
        ["average"],
        ["predict"],
        ["chat"],
        ["eval"],
        ["models"],
        ["data", "check"],
        ["data", "show"],
        ["data", "convert"],
        ["data", "split"],
        ["data", "synth"],
    ):
        result = runner.invoke(app, [*cmd, "--help"])
        assert result.exit_code == 0, cmd
        assert "Example: slmtune" in result.output, cmd


def test_train_config_errors_are_all_reported_at_once(tmp_path):
    result = runner.invoke(
        app, ["train", "--data", "x.jsonl", "--lr", "-1", "--lora-r", "0", "--method", "magic"]
    )
    assert result.exit_code == 1
    assert "3 problem(s) in the configuration" in result.output
    for flag in ("--lr", "--lora-r", "--method"):
        assert flag in result.output
    assert "Traceback" not in result.output


def test_train_yaml_config_and_unknown_key(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: x.jsonl\nlearning_rate: 0.1\n")
    result = runner.invoke(app, ["train", "--config", str(cfg)])
    assert result.exit_code == 1 and "--learning-rate: unknown key" in result.output


def test_unknown_model_is_a_clear_message(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "q", "output": "a"}) + "\n")
    result = runner.invoke(
        app,
        ["train", "--data", str(data), "--model", "no/such-model", "--out", str(tmp_path / "r")],
    )
    assert result.exit_code == 1
    assert (
        "'no/such-model' is not in the local Hugging Face cache and slmtune never downloads"
        in result.output
    )


def test_data_show_highlights_trained_tokens(tmp_path):
    model = tiny_model_dir(tmp_path / "m", "gemma3_text")
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"instruction": "我叫张三", "output": '{"name": "张三"}'}, ensure_ascii=False)
        + "\n"
    )
    result = runner.invoke(app, ["data", "show", str(data), "--model", str(model), "-n", "1"])
    assert result.exit_code == 0, result.output
    assert "<start_of_turn>model" in result.output and "trained]" in result.output


def test_data_synth_writes_records(tmp_path):
    out = tmp_path / "c.jsonl"
    result = runner.invoke(
        app, ["data", "synth", "complaints", "--n", "5", "--seed", "3", "--out", str(out)]
    )
    assert result.exit_code == 0
    assert len(out.read_text().splitlines()) == 5


def test_models_lists_the_embedded_alias():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "gemma-3-270m" in result.output


def test_chat_and_predict_file_on_a_tiny_model(tmp_path):
    model = tiny_model_dir(tmp_path / "m", "qwen2")
    result = runner.invoke(
        app, ["chat", str(model), "--max-new-tokens", "3"], input="你好\n/reset\nhi\n\n"
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("model> ") == 2
    data = tmp_path / "in.jsonl"
    data.write_text('{"instruction": "q1"}\n{"instruction": "q2", "id": "x"}\n')
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        ["predict", str(model), "--file", str(data), "--out", str(out), "--max-new-tokens", "3"],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["input"] for r in rows] == ["q1", "q2"] and rows[1]["id"] == "x"


def test_predict_needs_text_or_file(tmp_path):
    result = runner.invoke(app, ["predict", "whatever"])
    assert result.exit_code == 1 and "exactly one of --text or --file" in result.output


def test_every_train_config_field_is_a_flag_showing_its_default():
    from slmtune.config import TrainConfig, flag_name

    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    for name in TrainConfig.model_fields:
        assert flag_name(TrainConfig, name) in result.output, name
    assert "[default: gemma-3-270m]" in result.output and "[default: 0.0001]" in result.output


def test_train_flags_win_over_yaml_and_reach_the_config(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr("slmtune.train.train.train", lambda cfg: seen.append(cfg) or tmp_path)
    cfg_file = tmp_path / "run.yaml"
    cfg_file.write_text("data: x.jsonl\nlr: 0.5\nwarmup_ratio: 0.1\n")
    args = ["train", "-c", str(cfg_file), "--lr", "0.2", "--no-group-by-length", "--full-logits"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (cfg,) = seen
    assert cfg.lr == 0.2 and cfg.warmup_ratio == 0.1 and cfg.data == "x.jsonl"
    assert not cfg.group_by_length and not cfg.labels_only_logits and cfg.bf16_base


def test_decoding_options_are_validated_by_flag():
    result = runner.invoke(app, ["predict", "m", "--text", "x", "--max-new-tokens", "0"])
    assert result.exit_code == 1 and "--max-new-tokens:" in result.output
    result = runner.invoke(app, ["extract", "m", "--input", "a", "--output", "b", "--engine", "x"])
    assert result.exit_code == 1 and "--engine:" in result.output
