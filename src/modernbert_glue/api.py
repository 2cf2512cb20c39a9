"""The Python API: `train`, `resume`, `baseline`, `sweep`, `load_model`, `predict`, `evaluate`, `compare`,
`glue_submission`, `export_onnx`, `benchmark`, `list_presets` and `show_preset` do what the commands of those
names do (`bench`, `presets list`, `presets show`), as functions for notebooks and scripts, and those commands are
calls to them (the `predict` command reads its files and loads its model itself; `serve` has no function). Import
them from the package (it loads torch only when one is called):

    import modernbert_glue as mg

    metrics = mg.train("runs/rte", "minilm-glue", settings={"data.task": "rte", "train.epochs": 1})
    model = mg.load_model("runs/rte")
    mg.predict(model, [("A man is playing a guitar.", "A man plays an instrument.")])

`settings` are a preset's keys, dotted as `--set` and `presets show` name them ({"train.lr": 5e-5}); values are
typed, or text parsed as `--set` parses it. What a user can mend raises `modernbert_glue.UserError` with the line
the command would print (its exit code 2).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any, Sequence

from .errors import UserError, shown

if TYPE_CHECKING:
    from .inference.classifier import TextClassifier

Settings = dict[str, Any]
Path_ = str | PathLike
LOAD_OPTIONS = ("batch_size", "input_path", "bf16")  # how a loaded model runs (the torch backend: all three)


def train(output_dir: Path_ | None, preset: Path_ | None = None, *, settings: Settings | None = None,
          seeds: Sequence[int] | None = None, model_overrides: dict[str, Any] | None = None,
          overwrite: bool = False, check: bool = False) -> dict:
    """Fine-tune on a task and write the run folder (`train -o OUTPUT_DIR --preset PRESET --set KEY=VALUE ...`).

    `preset`: a name, a .toml path or a `train` run's folder (its saved config, to train it again); `seeds`: one
    run per seed in OUTPUT_DIR/seed-N and their mean ± std in seeds.json (`--seeds`);
    `model_overrides`: the model config's keys ({"num_hidden_layers": 2}, `--model-override`); `check`: check the
    options, data and model and return the resolved config, writing nothing (`--check`). Returns the dev metrics
    (seeds.json's content with `seeds`)."""
    from .config import resolve_run_config
    from .training.dispatch import train as run_training
    from .training.dispatch import warn_without_warm_start
    from .training.lifecycle import with_init_from_base
    from .training.runs import check_training, train_seeds

    settings, seeds = _settings(settings), _seed_list(seeds, settings)
    if not output_dir and not check:
        raise UserError("--output-dir is required (or --resume DIR to continue an unfinished run)")
    output_dir = _text(output_dir, "output_dir")
    cfg = resolve_run_config(_text(preset, "preset"), settings, None, _overrides(model_overrides))
    cfg = with_init_from_base(cfg, seeds, model_given="model.name" in settings,
                              random_init_given="model.random_init" in settings)
    warn_without_warm_start(cfg)  # once for the run or the seed set (a sweep's runs: each in its own log)
    if check:
        return check_training(cfg, output_dir, seeds, overwrite=overwrite)
    if seeds is not None:  # [] is refused there, not one run without a seed set
        return train_seeds(cfg, output_dir, seeds, overwrite=overwrite)
    return run_training(cfg, output_dir, overwrite=overwrite)


def resume(run_dir: Path_, preset: Path_ | None = None, *, settings: Settings | None = None,
           seeds: Sequence[int] | None = None, model_overrides: dict[str, Any] | None = None) -> dict:
    """Continue an unfinished run (or `--seeds` folder) from its newest checkpoint (`train --resume RUN_DIR`).
    `preset`/`settings`/`model_overrides` change the saved config where a resumed run allows it (e.g. more epochs);
    what would change the run already made is refused, naming the key."""
    from .config import resolve_run_config
    from .training.runs import resume_training

    settings, seeds, overrides = _settings(settings), _seed_list(seeds, settings), _overrides(model_overrides)
    if preset or settings or overrides:
        def requested(saved):
            return resolve_run_config(_text(preset, "preset"), settings, None, overrides, base=saved)
    else:
        requested = None
    return resume_training(_path(run_dir, "run_dir"), requested, seeds)


def baseline(name: str, output_dir: Path_, *, settings: Settings | None = None,
             encoder: str = "sentence-transformers/all-MiniLM-L6-v2", seed: int = 42,
             cache_dir: Path_ | None = None, overwrite: bool = False) -> dict:
    """Fit the baseline `name` (tfidf, sbert-frozen or majority) and write the run folder `train` would
    (`baseline NAME -o OUTPUT_DIR`); `settings` are the data.* keys only. Returns its metrics."""
    from .config import data_config
    from .run_paths import with_data_dir_from_env
    from .training.baselines import BaselineConfig, run_baseline

    cfg = BaselineConfig(name=name, encoder=encoder, seed=seed, cache_dir=_text(cache_dir, "cache_dir"))
    data = with_data_dir_from_env(data_config(_settings(settings)))
    return run_baseline(cfg, data, _path(output_dir, "output_dir"), overwrite=overwrite)


def sweep(output_dir: Path_, *, lr: Sequence[float], seeds: Sequence[int], weight_decay: Sequence[float] | None = None,
          epochs: Sequence[float] | None = None, preset: Path_ | None = None, settings: Settings | None = None,
          model_overrides: dict[str, Any] | None = None, train_args: Sequence[str] = (), parallel: int = 1,
          decoupled_weight_decay: bool = False, memory_per_run_gb: float = 4.0) -> dict:
    """The grid lr x weight decay x epochs x seeds, one `train` run each, resumable (`sweep`); `preset`,
    `settings` and `model_overrides` (or `train_args`, as on the command line) are what every run gets. Returns
    sweep.json's content: the table and the `chosen` config."""
    from .training.sweep import SweepConfig
    from .training.sweep import sweep as run_sweep

    grid = {key: _items(values, name, "a list of numbers") for key, name, values in
            (("lr", "lr", lr), ("wd", "weight_decay", weight_decay), ("ep", "epochs", epochs)) if values is not None}
    args = [*(["--preset", _text(preset, "preset")] if preset else []),
            *(a for key, value in _settings(settings).items() for a in ("--set", f"{key}={_as_set(value)}")),
            *(a for key, value in _overrides(model_overrides).items()
              for a in ("--model-override", f"{key}={json.dumps(value)}")), *map(str, train_args)]
    seeds = _seed_list(_items(seeds, "seeds", "a list of integers"), settings)  # a sweep needs them: None too
    cfg = SweepConfig(grid=grid, seeds=seeds, train_args=args, parallel=parallel,
                      memory_per_run_gb=memory_per_run_gb, decoupled_weight_decay=decoupled_weight_decay)
    return run_sweep(cfg, _path(output_dir, "output_dir"))


def load_model(folder: Path_, backend: str = "torch", **options) -> TextClassifier:
    """A saved model (a run folder or its model/, an `export onnx` folder with backend "onnx", a baseline's run)
    ready to classify: `predict(model, texts)`, or `model.scores(texts)` for the probabilities (regression: the
    values). `options`: batch_size, and for torch input_path and bf16, as `predict` takes them."""
    from .inference.backends import check_torch_only
    from .inference.backends import load_model as load
    from .outputs import model_folder

    if unknown := sorted(set(options) - set(LOAD_OPTIONS)):
        raise UserError(f"{', '.join(unknown)}: not an option of a model (those are {', '.join(LOAD_OPTIONS)})")
    check_torch_only(backend, **{key: options.get(key) for key in ("input_path", "bf16")})
    return load(model_folder(_path(folder, "folder")), backend, **options)


def predict(model: TextClassifier | Path_, texts: Sequence[str | tuple[str, str]], **options) -> list[dict]:
    """Classify sentences (a pair model: (first, second) tuples) with a model from `load_model`, or a folder
    loaded with `options` (`backend` among them): [{"text"[, "text_pair"], "label", "score"}] in input order."""
    from .inference.predict import predict_texts

    texts = _items(texts, "texts", "a list of sentences (or pairs)")
    name = "the model"
    if isinstance(model, (str, PathLike)):
        name, model = _path(model, "model"), load_model(model, **options)
    elif not hasattr(model, "settings"):  # (a TextClassifier's, and every backend's)
        raise UserError(f"model: a model folder or a model from load_model, got {shown(model)}")
    elif options:
        raise UserError(f"{', '.join(options)}: options for loading a folder; this model is loaded already")
    return predict_texts(model, texts, name)


def evaluate(model_dir: Path_, *, task: str | None = None, data_dir: Path_ | None = None, split: str | None = None,
             file: Path_ | None = None, max_eval_samples: int | None = None, backend: str = "torch",
             text_columns: Sequence[str] | str | None = None, label_column: str | None = None) -> dict:
    """A saved model's metrics on a labelled split of its task (default validation; from `data_dir`, else the
    Hub) or a labelled `file`, with 95% intervals and n (the `evaluate` command's JSON)."""
    from .config import DataConfig
    from .inference.evaluate import evaluate as run_evaluation
    from .outputs import model_folder

    text_columns = None if text_columns is None else _names(text_columns, "text_columns")
    if label_column is not None and not isinstance(label_column, str):
        raise UserError(f"label_column: a column name (a string), got {shown(label_column)}")
    data = DataConfig(data_dir=_text(data_dir, "data_dir"), max_eval_samples=max_eval_samples)
    return run_evaluation(model_folder(_path(model_dir, "model_dir")), data=data, split=split,
                          file=_text(file, "file"), task=task,
                          backend=backend, text_columns=text_columns or None,
                          label_column=label_column)


def compare(runs: Sequence[Path_], output: Path_, *, task: str | None = None, overwrite: bool = False) -> dict:
    """Write the comparison report of `runs` (run folders; a `--seeds` folder expands) into the new folder
    `output` (report.md, report.html, report.json, figures); runs of several tasks give the GLUE table. Returns
    report.json's content."""
    from .report import compare as run_compare

    return run_compare(_folders(runs), _path(output, "output"), overwrite=overwrite, task=task)


def glue_submission(runs: Sequence[Path_], output: Path_, *, data_root: Path_ | None = None,
                    overwrite: bool = False) -> dict:
    """The GLUE server's files from one fine-tuned run per task (`glue-submission`); returns submission.json."""
    from .submission import glue_submission as run_submission

    return run_submission(_folders(runs), _path(output, "output"), data_root=_text(data_root, "data_root"),
                          overwrite=overwrite)


def export_onnx(model_dir: Path_, output: Path_, *, quantize: str | None = None, overwrite: bool = False) -> dict:
    """Export a saved model to ONNX, int8-quantised with quantize="int8" (`export onnx`); returns export.json."""
    from .inference.export import export_onnx as run_export
    from .outputs import model_folder

    return run_export(model_folder(_path(model_dir, "model_dir")), _path(output, "output"), quantize=quantize,
                      overwrite=overwrite)


def benchmark(mode: str, *, model: Path_ | None = None, random_init: bool = True,
              model_overrides: dict[str, Any] | None = None, data_dir: Path_ | None = None,
              paths: Sequence[str] | None = None, batch_size: int | None = None,
              steps: int | None = None, repeats: int = 3, bf16: str | bool | None = None,
              lengths: Sequence[int] = (), variable_means: Sequence[int] = (), token_budget: int | None = None,
              compile: str | None = None, output: Path_ | None = None) -> dict:
    """Time the input paths side by side on SST-2 sentences (`bench train|infer`; named so because `bench` is the
    package modernbert_glue.bench): mode "train" (forward, backward and AdamW steps) or "infer";
    `lengths`/`variable_means` (infer) time fixed or varied long inputs instead. Returns the results (`results`,
    `ratios_real_tokens_per_s`, ...), also written to `output` when given."""
    from .bench import BenchConfig
    from .bench import bench as run_bench
    from .config import DataConfig
    from .device import use_bf16

    paths = _items(BenchConfig.paths if paths is None else paths, "paths", "a list of input paths")
    lengths = _items(lengths or (), "lengths", "a list of lengths")
    means = _items(variable_means or (), "variable_means", "a list of lengths")
    cfg = BenchConfig(model=_text(model, "model") or BenchConfig.model, random_init=random_init,
                      overrides=_overrides(model_overrides), mode=mode, paths=tuple(paths),
                      batch_size=64 if batch_size is None else batch_size,
                      steps=(2 if mode == "train" else 4) if steps is None else steps, repeats=repeats,
                      bf16=use_bf16("auto" if bf16 is None else bf16, "bench", "--bf16"), lengths=tuple(lengths),
                      variable_means=tuple(means), token_budget=token_budget,
                      compile="" if compile in (None, "none") else compile)
    if (lengths or means) and mode != "infer":
        raise UserError("--lengths and --variable-means go with `bench infer`")
    if (lengths or means) and batch_size is not None:
        raise UserError(f"--batch-size goes with the input paths: --lengths and --variable-means batch "
                        f"{cfg.tokens_per_batch} tokens at a time")
    return run_bench(cfg, DataConfig(data_dir=_text(data_dir, "data_dir")), _text(output, "output"))


def list_presets() -> list[str]:
    """The names of the presets shipped with the package (`presets list`)."""
    from .recipes import list_presets as names

    return names()


def show_preset(name: Path_ | None = "paper") -> dict:
    """A preset (name, .toml path or a `train` run's folder) resolved over the defaults, its values checked as
    `train` checks them (`presets show NAME`)."""
    from .config import load_config
    from .device import device_type
    from .training.dispatch import check_settings

    cfg = load_config(_text(name, "name"))  # None: the default preset
    check_settings(cfg, device_type())
    return cfg.to_dict()


def _text(path: Path_ | None, what: str) -> str | None:
    return None if path is None else _path(path, what)


def _path(value: Path_, what: str) -> str:
    """A path argument as text; anything else (a number, None where a path is required) is the one line a
    command would print for it, not os.fspath's TypeError."""
    if isinstance(value, str | PathLike):
        return os.fspath(value)
    raise UserError(f"{what}: expected a path (str or os.PathLike), got {shown(value)}")


def _settings(settings: Settings | None) -> Settings:
    """The settings given: a value of None is not given, as a command's option left out (the preset's stays)."""
    if settings is not None and not isinstance(settings, dict):
        raise UserError(f"settings: a dict of dotted keys ({{'train.lr': 5e-5}}), got {type(settings).__name__}")
    if bad := [key for key in settings or {} if not isinstance(key, str)]:
        raise UserError(f"settings: keys are dotted names such as 'train.lr', got {bad[0]!r}")
    return {key: value for key, value in (settings or {}).items() if value is not None}


def _overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    if overrides is not None and not isinstance(overrides, dict):
        raise UserError(f"model_overrides: a dict of model config keys, got {type(overrides).__name__}")
    return dict(overrides or {})


def _seed_list(seeds: Sequence[int] | None, settings: Settings | None) -> list[int] | None:
    from .config import check_seeds

    if seeds is None:
        return None
    seeds = _items(seeds, "seeds", "a list of integers")
    if not seeds:  # train --check would otherwise check one run, which the seed set then refuses
        raise UserError("seeds: give at least one seed")
    check_seeds(seeds, "--seeds")
    if "train.seed" in _settings(settings):  # each seed's run would train without it
        raise UserError("--seeds gives each run its seed: leave out --seed (and --set train.seed)")
    return [int(seed) for seed in seeds]


def _items(values, what: str, expected: str) -> list:
    """A list from any iterable (a tuple, a pandas column, a generator); one string or path is refused: it would
    be taken character by character; so are a dict (its keys) and a set (no order to answer in)."""
    if isinstance(values, (str, bytes, PathLike, Mapping, set, frozenset)) or not isinstance(values, Iterable):
        got = "one path" if isinstance(values, PathLike) else "one string" if isinstance(values, (str, bytes)) else \
            type(values).__name__
        raise UserError(f"{what}: {expected}, got {got}")
    return list(values)


def _folders(runs: Sequence[Path_]) -> list[str]:
    if not (folders := [_path(run, "runs") for run in _items(runs, "runs", "a list of folders")]):
        raise UserError("runs: give at least one run folder")
    return folders


def _names(values, what: str) -> list[str]:
    """Column names: a list of strings (an int is no column name: the files' columns are named)."""
    names = _items(values, what, "a list of column names")
    if bad := [name for name in names if not isinstance(name, str)]:
        raise UserError(f"{what}: column names are strings, got {shown(bad[0])}")
    return names


def _as_set(value: Any) -> str:
    """A setting as `--set` text, for the sweep's child `train` runs."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return os.fspath(value) if isinstance(value, PathLike) else str(value)  # (None: left out by _settings)
