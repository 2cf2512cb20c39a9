"""The `modernbert-glue` command: each subcommand parses its options and calls one library function.

A UserError anywhere becomes one line on stderr and exit code 2 (1: errors.MachineError, errors.RunFailed).
stdout carries only results (JSON).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import UserError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Fine-tune, evaluate and serve text encoders on the GLUE tasks and your own data.",
)
presets_app = typer.Typer(help="List and show training presets.", no_args_is_help=True)
app.add_typer(presets_app, name="presets")
export_app = typer.Typer(help="Export a saved model (onnx).", no_args_is_help=True)
app.add_typer(export_app, name="export")


from .cli_options import (  # noqa: E402  (after the apps: options are declared once, there)
    Backend, Bf16, DataDir, FineTunedDir, HubModel, InitFrom, InputPath, LabelColumn, MaxEval, ModelDir,
    ModelOverrides, OutputDir, Overwrite, Preset, RandomInit, Sets, Task, TextColumns, TokenBudget, TrainBatchSize,
    column_list,
    emit as _emit, int_list, with_data_options,
)


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"modernbert-glue {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True, metavar="",
        help="Print the version and exit.")] = False) -> None:
    pass


from .cli_protocol import glue_submission, sweep  # noqa: E402


@app.command()
@with_data_options
def train(
    output_dir: Annotated[Optional[str], typer.Option(
        "--output-dir", "-o", help="Run folder to create (new, or empty).")] = None,
    resume: Annotated[Optional[str], typer.Option(
        help="Continue the unfinished run (or --seeds folder) DIR from its newest checkpoint.")] = None,
    preset: Preset = None,
    model: HubModel = None,
    random_init: RandomInit = None,
    init_from: InitFrom = None,
    model_override: ModelOverrides = None,
    data: Optional[dict] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Training epochs.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.")] = None,
    batch_size: TrainBatchSize = None,
    weight_decay: Annotated[Optional[float], typer.Option(
        help="AdamW weight decay in torch's terms (a paper's decoupled value / the peak lr).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed.")] = None,
    input_path: InputPath = None,
    token_budget: TokenBudget = None,
    engine: Annotated[Optional[str], typer.Option(
        help="Training loop: auto (the engine on a GPU, the Trainer on a CPU), engine (captured steps) or trainer.")
    ] = None,
    seeds: Annotated[
        Optional[str], typer.Option(help="Comma-separated seeds: one run each in DIR/seed-N, mean ± std in DIR/seeds.json.")
    ] = None,
    set_: Sets = None,
    overwrite: Overwrite = False,
    check: Annotated[bool, typer.Option(
        "--check", metavar="",
        help="Check the options, data and model, print the resolved config, and stop: nothing is written.")
    ] = False,
) -> None:
    """Fine-tune a model on a GLUE task (or your own data), evaluate on dev, and save the run folder."""
    from . import api
    from .config import settings_from
    from .model_overrides import parse_overrides

    options = {"model.name": model, "model.random_init": random_init, "model.init_from": init_from,
               **{f"data.{name}": value for name, value in data.items()}, "train.epochs": epochs, "train.lr": lr,
               "train.batch_size": batch_size, "train.weight_decay": weight_decay, "train.seed": seed,
               "train.input_path": input_path, "train.packed_token_budget": token_budget, "train.engine": engine}
    settings = settings_from(options, set_)
    seed_list = int_list(seeds, "--seeds") if seeds is not None else None
    overrides = parse_overrides(model_override or [])
    if resume:
        if check:
            raise UserError("--check goes with a new run, not --resume")
        if overwrite:
            raise UserError("--resume continues a run and --overwrite starts it again: choose one")
        if output_dir and Path(output_dir).resolve() != Path(resume).resolve():
            raise UserError("--resume names the run folder; leave out --output-dir (or give the same folder)")
        metrics = api.resume(resume, preset, settings=settings, seeds=seed_list, model_overrides=overrides)
    else:
        metrics = api.train(output_dir, preset, settings=settings, seeds=seed_list, model_overrides=overrides,
                            overwrite=overwrite, check=check)
    if metrics:
        _emit(metrics)


@app.command()
@with_data_options
def baseline(
    name: Annotated[str, typer.Argument(help="tfidf, sbert-frozen or majority (train's majority class or mean).")],
    output_dir: OutputDir,
    data: Optional[dict] = None,
    encoder: Annotated[str, typer.Option(help="sbert-frozen: the sentence-transformers model.")] = "sentence-transformers/all-MiniLM-L6-v2",
    seed: Annotated[int, typer.Option(help="Seed of the held-out slice used to choose C.")] = 42,
    cache_dir: Annotated[Optional[str], typer.Option(help="Embedding cache (default ~/.cache/modernbert-glue/embeddings).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Fit a TF-IDF or frozen-SBERT logistic regression, or the majority floor; writes the same run folder as `train`."""
    from .api import baseline as run_baseline

    _emit(run_baseline(name, output_dir, settings={f"data.{key}": value for key, value in data.items()},
                       encoder=encoder, seed=seed, cache_dir=cache_dir, overwrite=overwrite))


@app.command()
def evaluate(
    model: ModelDir,
    task: Task = None,
    data_dir: DataDir = None,
    split: Annotated[Optional[str], typer.Option(help="train, validation (or dev) or test (default: validation).")] = None,
    file: Annotated[Optional[str], typer.Option(
        help="A labelled tsv/csv/jsonl/parquet file instead of a split (not with --data-dir or --split).")] = None,
    max_eval_samples: MaxEval = None,
    backend: Backend = "torch",
    text_columns: TextColumns = None, label_column: LabelColumn = None,  # --file's, where not the task's
) -> None:
    """Print the task's metrics (e.g. {"accuracy", "f1", "mcc", "n"}) of a saved model on a labelled split or file."""
    from .api import evaluate as run_evaluation

    _emit(run_evaluation(model, task=task, data_dir=data_dir, split=split, file=file, max_eval_samples=max_eval_samples,
                         backend=backend, text_columns=column_list(text_columns), label_column=label_column))


@app.command()
def predict(
    model: ModelDir,
    texts: Annotated[Optional[list[str]], typer.Argument(
        help="Sentences to classify (a pair model: two by two, first then second).")] = None,
    input: Annotated[Optional[str], typer.Option("--input", help=(
        "Text file (one per line; pairs: tab-separated) or tsv/csv/jsonl/parquet with the model's text columns "
        "(or sentence; sentence1,sentence2); - = stdin."))] = None,
    task: Task = None,
    text_columns: TextColumns = None,
    batch_size: Annotated[
        Optional[int], typer.Option(help="Sentences per forward pass (default: 64 for torch, 12 for onnx).")
    ] = None,
    input_path: InputPath = None,
    backend: Backend = "torch",
    bf16: Bf16 = None,
) -> None:
    """Classify sentences or pairs: one JSON line {"text"[, "text_pair"], "label", "score"} each, in input order."""
    from .inference.predict import predict as run_prediction

    options = {"batch_size": batch_size, "input_path": input_path, "bf16": bf16}
    for record in run_prediction(model, texts, input, backend, task=task, text_columns=column_list(text_columns),
                                 **options):
        _emit(record)


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="Run folders (train or baseline; a --seeds folder expands).")],
    output: Annotated[str, typer.Option("--output", help="Report folder to create (report.md, report.html).")],
    task: Task = None,
    overwrite: Overwrite = False,
) -> None:
    """Compare runs of one task: its metrics with CIs, paired tests, calibration, length buckets, speed, architecture."""
    from .api import compare as run_compare

    result = run_compare(runs, output, overwrite=overwrite, task=task)
    systems = list(result["glue"]["systems"]) if "glue" in result else [r["label"] for r in result["runs"]]
    _emit({"report": str(Path(output) / "report.md"), "html": str(Path(output) / "report.html"),
           "systems": systems})  # as the report's rows name them (the GLUE table: one per system, not per run)


# --help lists commands in this order: the protocol's after the commands it runs
app.command()(sweep)
app.command("glue-submission")(glue_submission)


@app.command()
def bench(
    mode: Annotated[str, typer.Argument(help="train (forward+backward+AdamW steps) or infer (forward passes).")],
    model: Annotated[Optional[str], typer.Option(
        help="Model folder or Hub id (default: answerdotai/ModernBERT-base).")] = None,
    random_init: Annotated[bool, typer.Option(
        "--random-init/--pretrained", metavar="", help="Random weights (default).")] = True,
    model_override: ModelOverrides = None,
    data_dir: DataDir = None,
    paths: Annotated[str, typer.Option(help="Comma-separated input paths.")] = "padded,dynamic,grouped,packed",
    batch_size: Annotated[Optional[int], typer.Option(
        help="Sentences per step (default 64; --lengths batches by tokens instead).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Timed steps per repeat (default: train 2, infer 4).")] = None,
    repeats: Annotated[int, typer.Option(help="Repeats per path; the median is reported.")] = 3,
    bf16: Bf16 = None,
    lengths: Annotated[Optional[str], typer.Option(help="infer only: fixed input lengths, e.g. 128,512,2048.")] = None,
    variable_means: Annotated[Optional[str], typer.Option(
        help="infer only: also lengths drawn around these means, padded and packed (the paper's Table 2: 256,4096).")
    ] = None,
    token_budget: TokenBudget = None,
    compile: Annotated[str, typer.Option(help="torch.compile mode for the steps (default, reduce-overhead); none: eager.")] = "none",
    output: Annotated[Optional[str], typer.Option(help="JSON results file to write (never overwritten).")] = None,
) -> None:
    """Input paths side by side on SST-2 sentences: real tokens/s, sentences/s, padding, memory (table on stderr)."""
    from .api import benchmark as run_bench
    from .bench import format_table
    from .model_overrides import parse_overrides

    report = run_bench(mode, model=model, random_init=random_init,
                       model_overrides=parse_overrides(model_override or []), data_dir=data_dir,
                       paths=[p.strip() for p in paths.split(",") if p.strip()],
                       batch_size=batch_size, steps=steps, repeats=repeats, bf16=bf16,
                       lengths=int_list(lengths, "--lengths") if lengths else (),
                       variable_means=int_list(variable_means, "--variable-means") if variable_means else (),
                       token_budget=token_budget, compile=compile, output=output)
    print(format_table(report), file=sys.stderr)
    _emit({"results": report["results"], "ratios_real_tokens_per_s": report["ratios_real_tokens_per_s"]})


@app.command()
def serve(
    model: ModelDir,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_batch_tokens: Annotated[int, typer.Option(help="Tokens per batched forward pass.")] = 8192,
    max_wait_ms: Annotated[float, typer.Option(
        help="How long a lone request waits for others (0: none; under load, batches form while the model is busy).")
    ] = 0.0,
    max_texts: Annotated[int, typer.Option(help="Texts per request (413 beyond).")] = 32,
    max_chars: Annotated[int, typer.Option(help="Characters per text (413 beyond).")] = 2000,
    max_queue: Annotated[int, typer.Option(help="Texts waiting before requests get 503.")] = 2048,
    max_inflight: Annotated[Optional[int], typer.Option(
        help="Batches in the model at once (default: 2 for onnx, 1 for torch).")
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option(help="Sentences per forward pass (default: 32 for torch, 12 for onnx).")
    ] = None,
    backend: Backend = "torch",
    bf16: Bf16 = None,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", envvar="MODERNBERT_GLUE_API_KEY", show_envvar=True,
        help="Require `Authorization: Bearer KEY` on every route but /health and /healthz.")] = None,
) -> None:
    """Serve the classifier over HTTP: /v1/classify, TEI's /predict, /health and /info, /healthz, /readyz, /metrics, a demo page."""
    from .inference.serve import ServeConfig
    from .inference.serve import serve as run_server

    run_server(ServeConfig(model=model, host=host, port=port, max_batch_tokens=max_batch_tokens,
                           max_wait_ms=max_wait_ms, max_texts=max_texts, max_chars=max_chars, max_queue=max_queue,
                           max_inflight=max_inflight, batch_size=batch_size, backend=backend, bf16=bf16 or "auto", api_key=api_key))


@export_app.command("onnx")
def export_onnx(
    model: FineTunedDir,
    output: Annotated[str, typer.Option("--output", help="Export folder to create.")],
    quantize: Annotated[Optional[str], typer.Option(help="int8: onnxruntime dynamic quantisation.")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Export a saved model to ONNX (dynamic batch and length), optionally int8-quantised; prints export.json."""
    from .api import export_onnx as run_export

    _emit(run_export(model, output, quantize=quantize, overwrite=overwrite))


@presets_app.command("list")
def presets_list() -> None:
    """Names of the presets shipped with the package."""
    from .api import list_presets

    for name in list_presets():
        print(name)


@presets_app.command("show")
def presets_show(name: Annotated[str, typer.Argument(help="Preset name, .toml path or a train run's folder.")] = "paper") -> None:
    """Print a preset resolved over the defaults, as JSON (its values checked as `train` checks them)."""
    from .api import show_preset

    _emit(show_preset(name))


def main() -> None:
    from .cli_main import run_app  # errors become one line

    run_app(app)


if __name__ == "__main__":
    main()
