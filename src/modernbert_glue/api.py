"""The Python API: `train`, `resume`, `baseline`, `load_model`, `predict`, `evaluate` and `compare` do what the
commands of those names do, as functions for notebooks and scripts (the CLI's train, baseline, evaluate and compare
call these).
Import them from the package (it loads torch only when one is called):

    import modernbert_glue as mg

    metrics = mg.train("runs/rte", "cpu-sbert", settings={"data.task": "rte", "train.epochs": 1})
    model = mg.load_model("runs/rte/model")
    mg.predict(model, [("A man is playing a guitar.", "A man plays an instrument.")])

`settings` are a preset's keys, dotted as `--set` and `presets show` name them ({"train.lr": 5e-5}); values are
typed, or text parsed as `--set` parses it. What a user can mend raises `modernbert_glue.UserError` with the line
the command would print (its exit code 2).
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Sequence

from .errors import UserError

Settings = dict[str, Any]


def train(output_dir: str | PathLike | None, preset: str | None = None, *, settings: Settings | None = None,
          seeds: Sequence[int] | None = None, model_overrides: dict[str, Any] | None = None,
          overwrite: bool = False, check: bool = False) -> dict:
    """Fine-tune on a task and write the run folder (`train -o OUTPUT_DIR --preset PRESET --set KEY=VALUE ...`).

    `seeds`: one run per seed in OUTPUT_DIR/seed-N and their mean ± std in seeds.json (`--seeds`);
    `model_overrides`: the model config's keys ({"num_hidden_layers": 2}, `--model-override`); `check`: check the
    options, data and model and return the resolved config, writing nothing (`--check`). Returns the dev metrics
    (seeds.json's content with `seeds`)."""
    from .config import resolve_run_config
    from .training.dispatch import train as run_training
    from .training.dispatch import warn_without_warm_start
    from .training.lifecycle import with_init_from_base
    from .training.runs import check_training, train_seeds

    settings, seeds = dict(settings or {}), _seed_list(seeds, settings)
    if not output_dir and not check:
        raise UserError("--output-dir is required (or --resume DIR to continue an unfinished run)")
    output_dir = str(output_dir) if output_dir else None
    cfg = resolve_run_config(preset, settings, None, model_overrides)
    cfg = with_init_from_base(cfg, seeds, model_given="model.name" in settings,
                              random_init_given="model.random_init" in settings)
    warn_without_warm_start(cfg)  # once for the run or the seed set (a sweep's runs: each in its own log)
    if check:
        return check_training(cfg, output_dir, seeds, overwrite=overwrite)
    if seeds:
        return train_seeds(cfg, output_dir, seeds, overwrite=overwrite)
    return run_training(cfg, output_dir, overwrite=overwrite)


def baseline(name: str, output_dir: str | PathLike, *, settings: Settings | None = None,
             encoder: str = "sentence-transformers/all-MiniLM-L6-v2", seed: int = 42,
             cache_dir: str | PathLike | None = None, overwrite: bool = False) -> dict:
    """Fit the baseline `name` (tfidf, sbert-frozen or majority) and write the run folder `train` would
    (`baseline NAME -o OUTPUT_DIR`); `settings` are the data.* keys only. Returns its metrics."""
    from .config import data_config
    from .run_paths import with_data_dir_from_env
    from .training.baselines import BaselineConfig, run_baseline

    cfg = BaselineConfig(name=name, encoder=encoder, seed=seed, cache_dir=None if cache_dir is None else str(cache_dir))
    data = with_data_dir_from_env(data_config(dict(settings or {})))
    return run_baseline(cfg, data, str(output_dir), overwrite=overwrite)


def resume(run_dir: str | PathLike, preset: str | None = None, *, settings: Settings | None = None,
           seeds: Sequence[int] | None = None, model_overrides: dict[str, Any] | None = None) -> dict:
    """Continue an unfinished run (or `--seeds` folder) from its newest checkpoint (`train --resume RUN_DIR`).
    `preset`/`settings`/`model_overrides` change the saved config where a resumed run allows it (e.g. more epochs);
    what would change the run already made is refused, naming the key."""
    from .config import resolve_run_config
    from .training.runs import resume_training

    if preset or settings or model_overrides:
        def requested(saved):
            return resolve_run_config(preset, dict(settings or {}), None, model_overrides, base=saved)
    else:
        requested = None
    return resume_training(str(run_dir), requested, _seed_list(seeds, settings))


def _seed_list(seeds: Sequence[int] | None, settings: Settings | None) -> list[int] | None:
    if seeds and "train.seed" in (settings or {}):  # each seed's run would train without it
        raise UserError("--seeds gives each run its seed: leave out --seed (and --set train.seed)")
    return list(seeds) if seeds is not None else None


def load_model(folder: str | PathLike, backend: str = "torch", **options):
    """A saved model folder (a run's model/, an `export onnx` folder with backend "onnx", a baseline's model/)
    ready to classify: `predict(model, texts)`, or `model.scores(texts)` for the probabilities (regression: the
    values). `options`: batch_size, and for torch input_path and bf16, as `predict` takes them."""
    from .inference.backends import load_model as load

    return load(str(folder), backend, **options)


def predict(model, texts: Sequence[str | tuple[str, str]], **options) -> list[dict]:
    """Classify sentences (a pair model: (first, second) tuples) with a model from `load_model`, or a folder
    loaded with `options`: [{"text"[, "text_pair"], "label", "score"}] in input order (`predict`'s records)."""
    from .inference.predict import predict_texts

    name = "the model"
    if isinstance(model, (str, PathLike)):
        name, model = str(model), load_model(model, **options)
    elif options:
        raise UserError(f"{', '.join(options)}: options for loading a folder; this model is loaded already")
    if isinstance(texts, str):  # one sentence would be classified letter by letter
        raise UserError("texts: a list of sentences (or pairs), got one string")
    return predict_texts(model, list(texts), name)


def evaluate(model_dir: str | PathLike, *, task: str | None = None, data_dir: str | PathLike | None = None,
             split: str | None = None, file: str | PathLike | None = None, max_eval_samples: int | None = None,
             backend: str = "torch", text_columns: Sequence[str] | None = None,
             label_column: str | None = None) -> dict:
    """A saved model's metrics on a labelled split of its task (default validation; from `data_dir`, else the
    Hub) or a labelled `file`, with 95% intervals and n (the `evaluate` command's JSON)."""
    from .config import DataConfig
    from .inference.evaluate import evaluate as run_evaluation

    data = DataConfig(data_dir=None if data_dir is None else str(data_dir), max_eval_samples=max_eval_samples)
    return run_evaluation(str(model_dir), data=data, split=split, file=None if file is None else str(file),
                          task=task, backend=backend, text_columns=list(text_columns) if text_columns else None,
                          label_column=label_column)


def compare(runs: Sequence[str | PathLike], output: str | PathLike, *, task: str | None = None,
            overwrite: bool = False) -> dict:
    """Write the comparison report of `runs` (run folders; a `--seeds` folder expands) into the new folder
    `output` (report.md, report.html, report.json, figures); runs of several tasks give the GLUE table. Returns
    report.json's content."""
    from .report import compare as run_compare

    return run_compare([str(run) for run in runs], str(output), overwrite=overwrite, task=task)
