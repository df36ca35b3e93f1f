"""The `slmtune` command line. Thin: parse flags, call one function, print SlmtuneError nicely."""

from __future__ import annotations

import functools
import sys

import typer

import slmtune  # noqa: F401  (goes offline before transformers is imported)
from slmtune.cli_options import config_options
from slmtune.config import (
    DEFAULT_MAX_LENGTH,
    DecodeConfig,
    ExtractConfig,
    LabelConfig,
    ServeConfig,
    TrainConfig,
)
from slmtune.errors import SlmtuneError

app = typer.Typer(
    help="Fine-tune a small open LLM into a private, fast, task-specific model. Offline; CPU first.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(
    help="Check, inspect, convert, split and synthesise datasets.", no_args_is_help=True
)
app.add_typer(data_app, name="data")


def friendly(fn):
    """Turn SlmtuneError into 'error: …' on stderr and exit code 1 — never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _quiet_libraries()
        try:
            return fn(*args, **kwargs)
        except SlmtuneError as e:
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.secho("interrupted", fg="yellow", err=True)
            raise typer.Exit(130) from None

    return wrapper


def _quiet_libraries() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


# -- models ---------------------------------------------------------------------------------


@app.command()
@friendly
def models():
    """List model aliases and what is cached locally.

    Example: slmtune models
    """
    from slmtune.models import list_models

    for row in list_models():
        state = "cached" if row["cached"] else "not prepared yet (first use converts it, ~1 min)"
        typer.echo(f"{row['name']:<28} {row['kind']:<16} {state}")
        if row.get("description"):
            typer.echo(f"{'':<28} {row['description']}")


# -- label ----------------------------------------------------------------------------------


@app.command()
@friendly
@config_options(LabelConfig)
def label(
    cfg: LabelConfig,
    input: str = typer.Option(..., "--input", help="raw records to label (.jsonl, .csv, .parquet)"),
    output: str = typer.Option(
        ..., "--output", "--out", help="labelled records (alpaca), ready for `slmtune train`"
    ),
    rejects: str = typer.Option(
        None,
        help="records the teacher did not label well, with the reason "
        "[default: OUTPUT with .rejects.jsonl]",
    ),
    limit: int = typer.Option(None, help="only the first N records (after --select)"),
    overwrite: bool = typer.Option(False, help="start over instead of resuming OUTPUT"),
):
    """Label raw texts with a big teacher model (any OpenAI-compatible endpoint).

    Answers are parsed, checked against the schema (--schema, else learned from --example
    records or from the first answers) and against the text (a verbatim field's value must
    occur in it); the good ones become training records, the others go to REJECTS with the
    reason. The API key is read from the variable --api-key-env names and never shown.
    Crash-safe and resumable: after a kill, rerun the same command.
    Example: slmtune label --input raw.jsonl --output labelled.jsonl --teacher-url
    https://api.deepseek.com/v1 --teacher-model deepseek-chat --api-key-env DEEPSEEK_API_KEY
    --system "Extract name, address, email and question as JSON" --select diverse --budget 400
    """
    from slmtune.label.label import label as run_label

    run_label(input, output, cfg, rejects=rejects, limit=limit, overwrite=overwrite)


# -- train ----------------------------------------------------------------------------------


@app.command()
@friendly
@config_options(TrainConfig, into="flags", build=False)
def train(
    flags: dict,
    config: str = typer.Option(
        None, "--config", "-c", help="YAML file with any of the options below (flags win)"
    ),
):
    """Fine-tune a model (LoRA by default) on a dataset and write a run directory.

    Example: slmtune train --data train.jsonl --out runs/complaints --epochs 1
    """
    from slmtune.config import load_config
    from slmtune.run import RunDir
    from slmtune.train.train import is_main_process
    from slmtune.train.train import train as run_training

    out = flags.get("out")
    if flags.get("resume") and not config and out and RunDir(out).config.exists():
        config = str(RunDir(out).config)  # same schedule as the interrupted run
    run_dir = run_training(load_config(TrainConfig, config, flags))
    if is_main_process():
        typer.echo(f"run saved to {run_dir}")


@app.command()
@friendly
def average(
    runs: list[str] = typer.Argument(..., help="two or more finished LoRA runs of one base model"),
    out: str = typer.Option(..., help="run directory to write (new or empty)"),
):
    """Average LoRA runs of one base and one task into one run (the mean of their updates).

    Two trainings of one task (another --seed or --lora-dropout) err in different places; on
    held-out forms their average scored above its runs' mean (README). Use it like any run.
    Example: slmtune average runs/a runs/b --out runs/averaged
    """
    from slmtune.train.average import average as run_average

    typer.echo(f"averaged run saved to {run_average(runs, out)}")


# -- predict / chat -------------------------------------------------------------------------


@app.command()
@friendly
@config_options(DecodeConfig)
def predict(
    cfg: DecodeConfig,
    run: str = typer.Argument(..., help="run directory or model reference"),
    text: str = typer.Option(None, help="one input text"),
    file: str = typer.Option(None, help="input data file (any supported format)"),
    out: str = typer.Option(None, help="write predictions here (.jsonl); default: print"),
):
    """Answer one text or a whole file with a run (or a plain model), as trained.

    Example: slmtune predict runs/complaints --text "我叫张三，住在北京市……"
    """
    from slmtune.infer.predict import predict_file, predict_text

    if (text is None) == (file is None):
        raise SlmtuneError("give exactly one of --text or --file")
    if text is not None:
        typer.echo(predict_text(run, text, cfg))
    else:
        n = predict_file(run, file, out, cfg)
        if out:
            typer.echo(f"{n} predictions written to {out}", err=True)


@app.command()
@friendly
@config_options(DecodeConfig, fields=["system", "max_new_tokens", "temperature"])
def chat(
    cfg: DecodeConfig,
    run: str = typer.Argument(..., help="run directory or model reference"),
):
    """Talk to a run interactively (empty line or Ctrl-D quits; /reset clears history).

    Example: slmtune chat runs/complaints
    """
    from slmtune.infer.predict import chat_loop

    chat_loop(run, cfg)


# -- eval -----------------------------------------------------------------------------------


@app.command("eval")
@friendly
@config_options(DecodeConfig, fields=["max_new_tokens", "batch_size", "constrain", "schema_file"])
def eval_(
    cfg: DecodeConfig,
    target: str = typer.Argument(..., help="run directory or model reference"),
    data: str = typer.Option(..., help="test data with reference answers"),
    out: str = typer.Option(None, help="report directory [RUN/eval]"),
    limit: int = typer.Option(None, help="only the first N records"),
    with_base: bool = typer.Option(
        False, "--with-base", help="also evaluate the run's base model, side by side"
    ),
    compare: str = typer.Option(None, help="also evaluate this model or run, side by side"),
    compare_unconstrained: bool = typer.Option(
        False,
        "--compare-unconstrained",
        help="also decode without the schema constraint and report both parse rates",
    ),
):
    """Generate for every test record (greedy, training template) and score field by field.

    Writes metrics.json, predictions.jsonl, report.html and report.md.
    Example: slmtune eval runs/complaints --data test.jsonl --with-base
    """
    from slmtune.evaluate.evaluate import evaluate

    evaluate(
        target,
        data,
        out,
        cfg,
        limit=limit,
        with_base=with_base,
        compare=compare,
        compare_unconstrained=compare_unconstrained,
    )


# -- extract --------------------------------------------------------------------------------


@app.command()
@friendly
@config_options(ExtractConfig, fields=[f for f in ExtractConfig.model_fields if f != "temperature"])
def extract(
    cfg: ExtractConfig,
    run: str = typer.Argument(..., help="run directory (or model reference)"),
    input: str = typer.Option(..., "--input", help="records to answer (.jsonl, .csv, .parquet)"),
    output: str = typer.Option(..., "--output", help="results, one JSON line per record"),
    limit: int = typer.Option(None, help="only the first N records"),
    overwrite: bool = typer.Option(False, help="start over instead of resuming OUTPUT"),
):
    """Answer every record of a large file; streamed, crash-safe, resumable.

    Each result line holds the record's line, id, parsed output and error (if any). After a
    crash or kill, rerun the same command: it continues after the last complete record.
    Example: slmtune extract runs/complaints --input mail.jsonl --output extracted.jsonl
    """
    from slmtune.infer.extract import extract as run_extract

    run_extract(run, input, output, cfg, limit=limit, overwrite=overwrite)


# -- export ---------------------------------------------------------------------------------


@app.command()
@friendly
def export(
    run: str = typer.Argument(..., help="run directory"),
    out: str = typer.Option(..., help="directory for the exported model"),
    format: str = typer.Option(
        "hf", "--format", help="hf (model directory) | gguf (llama.cpp) | ollama (GGUF + Modelfile)"
    ),
    dtype: str = typer.Option("bf16", help="--format hf: bf16 | fp16 | fp32"),
    quant: str = typer.Option(
        "f16",
        help="--format gguf/ollama: f16 | bf16 | q8_0 | f32, or q4_k_m | q5_k_m | q6_k "
        "(llama.cpp's llama-quantize: make llama-cpp)",
    ),
    overwrite: bool = typer.Option(False, help="replace a non-empty --out"),
):
    """Merge the LoRA into its base and save it for other tools.

    hf: a plain Hugging Face model directory (stock transformers, vLLM); it keeps the chat
    template. gguf: OUT/model.gguf for llama.cpp. ollama: the GGUF plus a Modelfile with the
    training prompt format and system prompt, and format.json (the answer schema).
    Example: slmtune export runs/complaints --out exported/complaints --format gguf --quant q8_0
    """
    from slmtune.export import export as run_export

    path = run_export(run, out, dtype=dtype, overwrite=overwrite, fmt=format, quant=quant)
    typer.echo(f"merged model written to {path}")


# -- serve ----------------------------------------------------------------------------------


@app.command()
@friendly
@config_options(ServeConfig)
def serve(
    cfg: ServeConfig,
    run: str = typer.Argument(..., help="run directory, exported model or model reference"),
    api_key: str = typer.Option(
        None, envvar="SLMTUNE_API_KEY", help="require 'Authorization: Bearer KEY'"
    ),
    adapter: list[str] = typer.Option(
        None, help="serve another fine-tune of the same base: NAME=RUN_DIR (repeatable)"
    ),
):
    """OpenAI-compatible API: /v1/chat/completions (streaming, json_schema), /v1/extract.

    Concurrent requests are batched together. Point any OpenAI client at
    http://127.0.0.1:8000/v1 with the run's name as the model.
    Example: slmtune serve runs/complaints --adapter mail=runs/mail --port 8000
    """
    from slmtune.serve.server import serve as run_server

    run_server(run, cfg, api_key=api_key, adapters=adapter or [])


# -- data -----------------------------------------------------------------------------------


@data_app.command("check")
@friendly
def data_check(
    file: str = typer.Argument(..., help="data file or directory"),
    model: str = typer.Option(None, help="measure token lengths with this model's tokenizer"),
    max_length: int = typer.Option(DEFAULT_MAX_LENGTH, help="count examples longer than this"),
    format: str = typer.Option("auto", help="auto, alpaca, sharegpt, messages"),
    template: str = typer.Option("auto", help="chat template for token counts"),
):
    """Validate a dataset and print its statistics; exits 1 if any record is invalid.

    Example: slmtune data check train.jsonl --model gemma-3-270m
    """
    from slmtune.data.check import check_dataset, format_report

    tokenizer = render = None
    if model:
        renderer = _renderer_for(model, template, max_length=10**9)
        tokenizer = renderer.tokenizer

        def render(example):
            r = renderer.render(example.messages)
            return r.input_ids, r.labels

    report = check_dataset(
        file, tokenizer=tokenizer, fmt=format, max_length=max_length, render=render
    )
    typer.echo(format_report(report))
    if report.invalid:
        raise typer.Exit(1)


@data_app.command("show")
@friendly
def data_show(
    file: str = typer.Argument(..., help="data file"),
    model: str = typer.Option("gemma-3-270m", help="model whose tokenizer and template to use"),
    n: int = typer.Option(2, "-n", help="how many examples"),
    template: str = typer.Option("auto", help="chat template"),
    max_length: int = typer.Option(DEFAULT_MAX_LENGTH, help="as in training"),
    format: str = typer.Option("auto", help="data format"),
):
    """Print rendered examples with trained tokens highlighted (green = learned).

    Example: slmtune data show train.jsonl -n 2
    """
    from rich.console import Console

    from slmtune.chat.show import show_masks
    from slmtune.data.load import load_examples

    renderer = _renderer_for(model, template, max_length=max_length)
    examples = load_examples(file, format, skip_invalid=True).examples[:n]
    console = Console()
    for example in examples:
        console.rule(example.source)
        console.print(show_masks(renderer, example.messages))


@data_app.command("convert")
@friendly
def data_convert(
    src: str = typer.Argument(..., help="input data file"),
    dst: str = typer.Argument(..., help="output .jsonl or .json"),
    to: str = typer.Option("messages", help="messages or alpaca"),
    format: str = typer.Option("auto", help="input format"),
    source: str = typer.Option(
        "records", "--from", help="records (any data file) or cluener (CLUENER2020 train/dev.json)"
    ),
):
    """Convert a dataset to OpenAI messages or alpaca records.

    Example: slmtune data convert data.csv data.jsonl --to messages
    Example: slmtune data convert cluener/dev.json dev.jsonl --from cluener --to alpaca
    """
    from slmtune.data.convert import convert

    n = convert(src, dst, to=to, fmt=format, source=source)
    typer.echo(f"wrote {n} records to {dst}")


@data_app.command("split")
@friendly
def data_split(
    src: str = typer.Argument(..., help="input data file"),
    test_ratio: float = typer.Option(0.1, help="share of records for the test split"),
    seed: int = typer.Option(0, help="random seed"),
    out_dir: str = typer.Option(None, help="where to write (default: next to the input)"),
):
    """Split into train/test; duplicate prompts never straddle the split.

    Example: slmtune data split data.jsonl --test-ratio 0.1 --seed 0
    """
    from slmtune.data.convert import split

    train_path, test_path = split(src, test_ratio=test_ratio, seed=seed, out_dir=out_dir)
    typer.echo(f"train: {train_path}\ntest:  {test_path}")


@data_app.command("synth")
@friendly
def data_synth(
    task: str = typer.Argument(..., help="complaints or policy-pages"),
    n: int = typer.Option(300, "--n", help="number of records"),
    seed: int = typer.Option(0, help="random seed (same seed, same data)"),
    out: str = typer.Option(..., help="output .jsonl"),
):
    """Generate labelled synthetic demo data (alpaca format) for the seeds' tasks.

    Example: slmtune data synth complaints --n 300 --seed 0 --out complaints.jsonl
    """
    from slmtune.data.synth import synthesize, write_jsonl

    records = synthesize(task, n, seed)
    write_jsonl(records, out)
    typer.echo(f"wrote {len(records)} {task} records to {out}")


def _renderer_for(model: str, template: str, max_length: int):
    """Tokenizer + template of a model or run, without loading its weights."""
    from slmtune.run import open_renderer

    return open_renderer(model, template=template, max_length=max_length).renderer


def main() -> None:
    app(prog_name="slmtune")


if __name__ == "__main__":
    sys.exit(main())
