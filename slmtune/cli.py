"""The `slmtune` command line. Thin: parse flags, call one function, print SlmtuneError nicely."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import typer

import slmtune  # noqa: F401  (goes offline before transformers is imported)
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


# -- train ----------------------------------------------------------------------------------


@app.command()
@friendly
def train(
    config: str = typer.Option(
        None, "--config", "-c", help="YAML file with any of the flags below"
    ),
    model: str = typer.Option(None, help="alias, local dir, .gguf or cached hub id [gemma-3-270m]"),
    data: str = typer.Option(None, help="training data: .json/.jsonl/.csv/.parquet or a directory"),
    out: str = typer.Option(None, help="run directory to write [runs/latest]"),
    format: str = typer.Option(None, help="auto, alpaca, sharegpt, messages"),
    skip_invalid: bool = typer.Option(
        None, "--skip-invalid", help="drop invalid records, say how many"
    ),
    template: str = typer.Option(None, help="auto, hf, gemma, chatml, qwen3"),
    last_turn_only: bool = typer.Option(
        None, "--last-turn-only", help="train only the final answer"
    ),
    max_length: int = typer.Option(None, help="tokens per example [1024]"),
    method: str = typer.Option(None, help="lora, full or qlora (CUDA only) [lora]"),
    lora_r: int = typer.Option(None, help="LoRA rank [8]"),
    lora_alpha: int = typer.Option(None, help="LoRA alpha [32]"),
    lora_dropout: float = typer.Option(None, help="LoRA dropout [0.1]"),
    lora_targets: str = typer.Option(None, help="all-linear or e.g. q_proj,v_proj [all-linear]"),
    epochs: float = typer.Option(None, help="passes over the data [3]"),
    max_steps: int = typer.Option(None, help="optimizer steps, overrides --epochs"),
    lr: float = typer.Option(None, help="peak learning rate [1e-4]"),
    batch_size: int = typer.Option(None, help="examples per micro-batch [4]"),
    grad_accum: int = typer.Option(None, help="micro-batches per optimizer step [4]"),
    eval_data: str = typer.Option(None, help="held-out data for eval loss"),
    eval_ratio: float = typer.Option(None, help="hold out this share of --data instead"),
    seed: int = typer.Option(None, help="random seed [42]"),
    packing: bool = typer.Option(
        None,
        "--packing/--no-packing",
        help="padding-free packing; default: length-grouped batches [off]",
    ),
    group_by_length: bool = typer.Option(
        None, "--group-by-length/--no-group-by-length", help="similar lengths per batch [on]"
    ),
    labels_only_logits: bool = typer.Option(
        None, "--labels-only-logits/--full-logits", help="LM head only where trained [on]"
    ),
    gradient_checkpointing: bool = typer.Option(
        None, "--gradient-checkpointing/--no-gradient-checkpointing", help="save memory [off]"
    ),
    dtype: str = typer.Option(None, help="auto (bf16 autocast where supported), float32, bfloat16"),
    bf16_base: bool = typer.Option(
        None,
        "--bf16-base/--fp32-base",
        help="with bf16 + LoRA: frozen base weights in bf16, LoRA in fp32 [on]",
    ),
    threads: int = typer.Option(None, help="CPU threads, 0 = all [0]"),
    report_to: str = typer.Option(None, help="none, tensorboard or swanlab (local mode) [none]"),
    save_steps: int = typer.Option(None, help="checkpoint every N steps, for --resume [50]"),
    resume: bool = typer.Option(
        None, "--resume", help="continue the run in --out from its last checkpoint"
    ),
):
    """Fine-tune a model (LoRA by default) on a dataset and write a run directory.

    Example: slmtune train --data train.jsonl --out runs/complaints --epochs 1
    """
    from slmtune.config import TrainConfig, load_config
    from slmtune.train.run import train as run_training

    flags = {
        k: v
        for k, v in locals().items()
        if k not in ("config", "TrainConfig", "load_config", "run_training")
    }
    if resume and not config and out and (Path(out) / "config.yaml").exists():
        config = str(Path(out) / "config.yaml")  # same schedule as the interrupted run
    cfg = load_config(TrainConfig, config, flags)
    run_dir = run_training(cfg)
    from slmtune.train.run import is_main_process

    if is_main_process():
        typer.echo(f"run saved to {run_dir}")


# -- predict / chat -------------------------------------------------------------------------


@app.command()
@friendly
def predict(
    run: str = typer.Argument(..., help="run directory or model reference"),
    text: str = typer.Option(None, help="one input text"),
    file: str = typer.Option(None, help="input data file (any supported format)"),
    out: str = typer.Option(None, help="write predictions here (.jsonl); default: print"),
    system: str = typer.Option(
        None, help="system prompt (default: the one the run was trained with)"
    ),
    max_new_tokens: int = typer.Option(256, help="answer length limit"),
    batch_size: int = typer.Option(8, help="answers decoded at once"),
    temperature: float = typer.Option(0.0, help="0 = greedy"),
    constrain: bool = typer.Option(
        True,
        "--constrain/--no-constrain",
        help="JSON tasks: decode only answers valid under the schema (xgrammar)",
    ),
    schema: str = typer.Option(None, help="JSON Schema file [the run's schema.json]"),
):
    """Answer one text or a whole file with a run (or a plain model), as trained.

    Example: slmtune predict runs/complaints --text "我叫张三，住在北京市……"
    """
    from slmtune.infer.predict import predict_file, predict_text

    if (text is None) == (file is None):
        raise SlmtuneError("give exactly one of --text or --file")
    if text is not None:
        typer.echo(
            predict_text(
                run,
                text,
                system=system,
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                constrain=constrain,
                schema_file=schema,
            )
        )
    else:
        n = predict_file(
            run,
            file,
            out,
            system=system,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            temperature=temperature,
            constrain=constrain,
            schema_file=schema,
        )
        if out:
            typer.echo(f"{n} predictions written to {out}", err=True)


@app.command()
@friendly
def chat(
    run: str = typer.Argument(..., help="run directory or model reference"),
    system: str = typer.Option(None, help="system prompt (default: the run's)"),
    max_new_tokens: int = typer.Option(256, help="answer length limit"),
):
    """Talk to a run interactively (empty line or Ctrl-D quits; /reset clears history).

    Example: slmtune chat runs/complaints
    """
    from slmtune.infer.predict import chat_loop

    chat_loop(run, system=system, max_new_tokens=max_new_tokens)


# -- eval -----------------------------------------------------------------------------------


@app.command("eval")
@friendly
def eval_(
    target: str = typer.Argument(..., help="run directory or model reference"),
    data: str = typer.Option(..., help="test data with reference answers"),
    out: str = typer.Option(None, help="report directory [RUN/eval]"),
    limit: int = typer.Option(None, help="only the first N records"),
    batch_size: int = typer.Option(8, help="answers decoded at once"),
    max_new_tokens: int = typer.Option(256, help="answer length limit"),
    with_base: bool = typer.Option(
        False, "--with-base", help="also evaluate the run's base model, side by side"
    ),
    compare: str = typer.Option(None, help="also evaluate this model or run, side by side"),
    constrain: bool = typer.Option(
        True,
        "--constrain/--no-constrain",
        help="JSON tasks: decode only answers valid under the schema (xgrammar)",
    ),
    schema: str = typer.Option(None, help="JSON Schema file [the run's schema.json]"),
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
    from slmtune.evaluate.run import evaluate

    evaluate(
        target,
        data,
        out,
        limit=limit,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        with_base=with_base,
        compare=compare,
        constrain=constrain,
        schema_file=schema,
        compare_unconstrained=compare_unconstrained,
    )


# -- extract --------------------------------------------------------------------------------


@app.command()
@friendly
def extract(
    run: str = typer.Argument(..., help="run directory (or model reference)"),
    input: str = typer.Option(..., "--input", help="records to answer (.jsonl, .csv, .parquet)"),
    output: str = typer.Option(..., "--output", help="results, one JSON line per record"),
    text_field: str = typer.Option("text", help="the field holding the text to answer"),
    id_field: str = typer.Option("id", help="copied to each result when present"),
    batch_size: int = typer.Option(32, help="records decoded at once"),
    limit: int = typer.Option(None, help="only the first N records"),
    max_new_tokens: int = typer.Option(256, help="answer length limit"),
    system: str = typer.Option(None, help="system prompt (default: the run's)"),
    constrain: bool = typer.Option(
        True,
        "--constrain/--no-constrain",
        help="JSON tasks: decode only answers valid under the schema (xgrammar)",
    ),
    schema: str = typer.Option(None, help="JSON Schema file [the run's schema.json]"),
    engine: str = typer.Option("transformers", help="transformers | vllm (NVIDIA GPU)"),
    overwrite: bool = typer.Option(False, help="start over instead of resuming OUTPUT"),
):
    """Answer every record of a large file; streamed, crash-safe, resumable.

    Each result line holds the record's line, id, parsed output and error (if any). After a
    crash or kill, rerun the same command: it continues after the last complete record.
    Example: slmtune extract runs/complaints --input mail.jsonl --output extracted.jsonl
    """
    from slmtune.infer.extract import ExtractSettings
    from slmtune.infer.extract import extract as run_extract

    settings = ExtractSettings(
        text_field=text_field,
        id_field=id_field,
        system=system,
        constrain=constrain,
        schema_file=schema,
        max_new_tokens=max_new_tokens,
        engine=engine,
    )
    run_extract(
        run, input, output, settings, batch_size=batch_size, limit=limit, overwrite=overwrite
    )


# -- export ---------------------------------------------------------------------------------


@app.command()
@friendly
def export(
    run: str = typer.Argument(..., help="run directory"),
    out: str = typer.Option(..., help="directory for the merged model"),
    dtype: str = typer.Option("bf16", help="bf16 | fp16 | fp32"),
    overwrite: bool = typer.Option(False, help="replace a non-empty --out"),
):
    """Merge the LoRA into its base and save a plain Hugging Face model directory.

    It loads with stock transformers (no slmtune needed) and keeps the chat template.
    Example: slmtune export runs/complaints --out exported/complaints --dtype bf16
    """
    from slmtune.export import export as run_export

    path = run_export(run, out, dtype=dtype, overwrite=overwrite)
    typer.echo(f"merged model written to {path}")


# -- serve ----------------------------------------------------------------------------------


@app.command()
@friendly
def serve(
    run: str = typer.Argument(..., help="run directory, exported model or model reference"),
    host: str = typer.Option("127.0.0.1", help="bind address (non-loopback needs --api-key)"),
    port: int = typer.Option(8000, help="TCP port"),
    api_key: str = typer.Option(
        None, envvar="SLMTUNE_API_KEY", help="require 'Authorization: Bearer KEY'"
    ),
    adapter: list[str] = typer.Option(
        None, help="serve another fine-tune of the same base: NAME=RUN_DIR (repeatable)"
    ),
    name: str = typer.Option(None, help="model name for RUN [its directory name]"),
    max_batch: int = typer.Option(32, help="requests decoded together (continuous batching)"),
    max_wait_ms: int = typer.Option(20, help="idle: how long a request waits for others"),
    max_queue: int = typer.Option(256, help="waiting requests before 503"),
    max_tokens_cap: int = typer.Option(1024, help="upper bound on a request's max_tokens"),
    max_body_kb: int = typer.Option(1024, help="largest request body accepted (413 above)"),
):
    """OpenAI-compatible API: /v1/chat/completions (streaming, json_schema), /v1/extract.

    Concurrent requests are batched together. Point any OpenAI client at
    http://127.0.0.1:8000/v1 with the run's name as the model.
    Example: slmtune serve runs/complaints --adapter mail=runs/mail --port 8000
    """
    from slmtune.serve.app import Limits
    from slmtune.serve.server import serve as run_server

    limits = Limits(max_body_bytes=max_body_kb * 1024, max_tokens_cap=max_tokens_cap)
    run_server(
        run,
        host=host,
        port=port,
        api_key=api_key,
        adapters=adapter or [],
        name=name,
        limits=limits,
        max_batch=max_batch,
        max_wait_ms=max_wait_ms,
        max_queue=max_queue,
    )


# -- data -----------------------------------------------------------------------------------


@data_app.command("check")
@friendly
def data_check(
    file: str = typer.Argument(..., help="data file or directory"),
    model: str = typer.Option(None, help="measure token lengths with this model's tokenizer"),
    max_length: int = typer.Option(1024, help="count examples longer than this"),
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
    max_length: int = typer.Option(1024, help="as in training"),
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
):
    """Convert a dataset to OpenAI messages or alpaca records.

    Example: slmtune data convert data.csv data.jsonl --to messages
    """
    from slmtune.data.convert import convert

    n = convert(src, dst, to=to, fmt=format)
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
    from slmtune.data.synth import generate, write_jsonl

    records = generate(task, n, seed)
    write_jsonl(records, out)
    typer.echo(f"wrote {len(records)} {task} records to {out}")


def _renderer_for(model: str, template: str, max_length: int):
    """Tokenizer + template of a model or run, without loading its weights."""
    from slmtune.chat import ChatRenderer, choose_template, install_template
    from slmtune.models import load_tokenizer, resolve_model
    from slmtune.runs import is_run_dir, read_run_meta

    if is_run_dir(model):
        tokenizer = load_tokenizer(Path(model) / "tokenizer")
        return ChatRenderer(
            tokenizer, max_length=max_length or read_run_meta(Path(model))["max_length"]
        )
    path = resolve_model(model)
    tokenizer = load_tokenizer(path)
    model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    install_template(tokenizer, choose_template(tokenizer, model_type, template))
    return ChatRenderer(tokenizer, max_length=max_length)


def main() -> None:
    app(prog_name="slmtune")


if __name__ == "__main__":
    sys.exit(main())
