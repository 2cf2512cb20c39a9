"""The paper-protocol subcommands of the CLI (`sweep`, `glue-submission`), registered on cli.py's app; options
are declared once in cli_options.py, as for every command."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from .cli_options import (HubModel, InitFrom, ModelOverrides, Overwrite, Preset, RandomInit, Sets, TrainBatchSize, emit,
                          int_list, with_data_options)


@with_data_options
def sweep(
    output_dir: Annotated[str, typer.Option("--output-dir", "-o", help="Sweep folder (created, or continued).")],
    lr: Annotated[str, typer.Option(help="Learning rates, comma-separated.")],
    seeds: Annotated[str, typer.Option(help="Seeds, comma-separated: every config runs each.")],
    weight_decay: Annotated[Optional[str], typer.Option(
        help="Weight decays, comma-separated: torch AdamW's, or the paper's with --decoupled-weight-decay.")] = None,
    epochs: Annotated[Optional[str], typer.Option(help="Epoch counts, comma-separated.")] = None,
    preset: Preset = None,
    model: HubModel = None,
    random_init: RandomInit = None,
    init_from: InitFrom = None,
    model_override: ModelOverrides = None,
    batch_size: TrainBatchSize = None,
    set_: Sets = None,
    parallel: Annotated[int, typer.Option(help="Runs at once (a GPU holds several; on a CPU keep 1).")] = 1,
    decoupled_weight_decay: Annotated[bool, typer.Option(
        "--decoupled-weight-decay", metavar="",
        help="--weight-decay values are the paper's (decoupled): each run gets wd / lr.")
    ] = False,
    memory_per_run_gb: Annotated[float, typer.Option(
        help="Free memory (GPU, else RAM) a run needs before another starts beside it.")] = 4.0,
    data: Optional[dict] = None,
) -> None:
    """Grid of lr x weight decay x epochs x seeds for one task, resumable; prints the table (stderr) and the chosen
    config (stdout)."""
    from .api import sweep as run_sweep
    from .cli_options import data_args, float_list
    from .training.sweep import table

    train_args = [*(["--preset", preset] if preset else []), *(["--model", model] if model else []),
                  *(["--random-init"] if random_init else []), *(["--init-from", init_from] if init_from else []),
                  *(a for item in model_override or [] for a in ("--model-override", item)),
                  *(["--batch-size", str(batch_size)] if batch_size is not None else []),
                  *(a for item in set_ or [] for a in ("--set", item)), *data_args(data)]
    # --weight-decay '' is refused by float_list, not a grid without decays
    grid = {name: None if text is None else float_list(text, f"--{name.replace('_', '-')}")
            for name, text in (("lr", lr), ("weight_decay", weight_decay), ("epochs", epochs))}
    summary = run_sweep(output_dir, **grid, seeds=int_list(seeds, "--seeds"), train_args=train_args,
                        parallel=parallel, memory_per_run_gb=memory_per_run_gb,
                        decoupled_weight_decay=decoupled_weight_decay)
    sys.stderr.write(table(summary))  # sweep.md's, for the person at the terminal; stdout stays one JSON object
    emit(summary["chosen"])


def glue_submission(
    runs: Annotated[list[str], typer.Argument(
        help="One run per task: a run folder (or RUN/model), a --seeds folder (its best seed), or an export folder.")],
    output: Annotated[str, typer.Option("--output", help="Folder to create: CoLA.tsv, SST-2.tsv, ... for the GLUE server.")],
    data_root: Annotated[Optional[str], typer.Option(
        "--data-root", help="Folder of GLUE task folders (ROOT/rte/test.tsv, ...; AX: ROOT/ax/diagnostic.tsv); default: the Hub.")
    ] = None,
    overwrite: Overwrite = False,
) -> None:
    """Write the GLUE leaderboard's files from one fine-tuned run per task; prints submission.json."""
    from .api import glue_submission as run_submission

    emit(run_submission(runs, output, data_root=data_root, overwrite=overwrite))
