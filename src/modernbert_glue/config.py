"""Typed run configuration: dataclasses loaded from a TOML preset, then command-line overrides.

A preset is a small TOML file with the sections [data], [model] and [train]; every key must be a field
below with a value of the field's type. Overrides use dotted keys (``train.lr=1e-4``). Unknown keys and
wrong types raise UserError naming the preset file or the override.
"""

from __future__ import annotations

import copy
import dataclasses
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from .errors import UserError
from .recipes import DEFAULT_PRESET, check_preset_task, default_preset, is_paper_preset, preset_table, warn_decay_kept
from .run_paths import DATA_DIR_ENV, with_absolute_paths, with_data_dir_from_env  # noqa: F401  (DATA_DIR_ENV: data.py)


def _doc(default: Any, doc: str) -> Any:
    """A dataclass field with its documentation kept in the metadata (shown by `presets show`)."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class DataConfig:
    task: str = _doc(
        "sst2",
        "GLUE task (cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli; ax to predict MNLI's diagnostics), or "
        "custom: your own files, with text_columns, label_column and regression.",
    )
    text_columns: list[str] = _doc(
        [], "The text column, or two for a pair (e.g. sentence1,sentence2); default: the task's own."
    )
    label_column: str | None = _doc(None, "The label column; default: the task's own (custom: label).")
    regression: bool = _doc(False, "custom only: the label is a number to predict (one output, MSE loss).")
    data_dir: str | None = _doc(
        None,
        "GLUE-format folder with train.tsv/dev.tsv/test.tsv; falls back to $MODERNBERT_GLUE_DATA_DIR, "
        "then to the Hugging Face Hub (nyu-mll/glue).",
    )
    train_file: str | None = _doc(None, "Training file (tsv, csv, jsonl or parquet); overrides data_dir.")
    validation_file: str | None = _doc(None, "Validation file; overrides data_dir.")
    test_file: str | None = _doc(None, "Test file (label column optional); overrides data_dir.")
    max_train_samples: int | None = _doc(None, "Keep only the first N training rows (quick runs).")
    max_eval_samples: int | None = _doc(None, "First N rows of each validation set (quick runs); test files: all.")
    max_length: int = _doc(128, "Truncate tokenized inputs to this many tokens (SST-2 max is ~68).")


@dataclass
class ModelConfig:
    name: str = _doc(
        "answerdotai/ModernBERT-base",
        "Hub id or local folder. Offline, known ids resolve to packaged copies (see models.py).",
    )
    random_init: bool = _doc(False, "Build the architecture from config.json with random weights.")
    overrides: dict[str, Any] = _doc({}, "Model config fields to change, e.g. {num_hidden_layers = 2}.")
    init_from: str | None = _doc(
        None,
        "A fine-tuned model (RUN or RUN/model) whose weights start this run with a fresh classification layer: "
        "the paper's MNLI warm start for RTE, MRPC and STS-B. Its architecture and tokenizer are used.",
    )


@dataclass
class TrainConfig:
    epochs: float = _doc(2.0, "Training epochs (may be fractional).")
    lr: float = _doc(8e-5, "Peak learning rate.")
    batch_size: int = _doc(64, "Training batch size per device.")
    eval_batch_size: int = _doc(128, "Evaluation batch size per device.")
    weight_decay: float = _doc(0.125, "AdamW weight decay, torch's (the paper's SST-2 1e-5 is decoupled: 1e-5 / 8e-5).")
    decay_norms_and_biases: bool = _doc(
        False, "Weight decay on every parameter, norm weights and biases too, as the reference's DecoupledAdamW "
        "(false: the Hugging Face Trainer's rule, no decay on them).")
    adam_beta1: float = _doc(0.9, "AdamW beta1.")
    adam_beta2: float = _doc(0.98, "AdamW beta2.")
    adam_epsilon: float = _doc(1e-6, "AdamW epsilon.")
    classifier_lr_scale: float = _doc(
        1.0,
        "The classification layer's learning rate as a multiple of train.lr: a fresh layer on a pretrained or "
        "warm-started encoder can leave a loss plateau sooner at a higher rate (1: the same rate).",
    )
    lr_scheduler: str = _doc("linear", "Transformers scheduler name (linear, cosine, constant_with_warmup, ...).")
    warmup_ratio: float = _doc(0.06, "Fraction of training steps spent warming up the learning rate.")
    max_grad_norm: float = _doc(1.0, "Gradient clipping norm.")
    label_smoothing: float = _doc(0.0, "Label smoothing factor for the cross-entropy loss.")
    seed: int = _doc(42, "Random seed for initialisation, shuffling and dropout.")
    bf16: str = _doc("auto", "bf16 autocast: auto (on GPUs that support it), fast (also CPUs with bf16 units), on, off.")
    evals_per_epoch: int = _doc(2, "Dev evaluations per epoch (every steps/N steps, rounded down: N, or a few more "
                                   "when N does not divide the steps); the best one is kept.")
    ema_decay: float = _doc(0.0, "Evaluate and save an exponential moving average of the weights (0: off).")
    early_stopping_patience: int = _doc(0, "Stop after this many evaluations without improvement (0: off).")
    input_path: str = _doc(
        "auto",
        "How batches are formed: padded (to max_length), dynamic (random batches padded to their longest), "
        "grouped (length-grouped batches), packed (random batches without padding), auto (fastest for the model).",
    )
    packed_token_budget: int = _doc(
        0,
        "packed path only: pad every batch to exactly this many tokens (a multiple of the 256-token packed row), "
        "so that all steps share one static shape for torch.compile / CUDA graphs (0: off).",
    )
    logging_steps: int = _doc(50, "Log loss and learning rate every N steps (TensorBoard).")
    checkpoint_steps: int = _doc(
        0,
        "Also write a resumable checkpoint every N steps (0: only at the dev evaluations, at least one per "
        "epoch). Checkpoints live in DIR/checkpoints/ until training succeeds; `train --resume DIR` continues.",
    )
    engine: str = _doc(
        "auto",
        "Training loop: engine (whole steps captured once per static packed shape and replayed: CUDA graphs on a "
        "GPU; training/engine.py), trainer (the HF Trainer: DDP, any model type), auto (the engine on a GPU, the "
        "Trainer on a CPU). What the engine does not support goes to the Trainer, with one log line.",
    )
    compile: str = _doc(
        "auto", "engine only: torch.compile the encoder layers inside the step: auto (on a GPU), on or off."
    )
    max_steps: int = _doc(-1, "Stop after N optimizer steps (overrides epochs when > 0).")
    threads: int = _doc(0, "torch intra-op threads on CPU (0: torch's default).")
    freeze_embeddings: bool = _doc(
        False, "Keep the input token embeddings fixed (no gradient, no optimizer state): cheaper steps."
    )
    cpu_flash_attention: bool = _doc(
        True, "On CPU, let SDPA pick its flash kernel; false forces the plain (math) kernel."
    )


@dataclass
class RunConfig:
    preset: str = _doc(DEFAULT_PRESET, "Preset the run started from (name or path).")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def load_config(preset: str | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Resolve a run configuration: defaults <- preset file <- overrides (dotted keys)."""
    preset = preset or default_preset((overrides or {}).get("data.task"))
    name, table, source = preset_table(preset)
    cfg = check_ranges(_apply_table(RunConfig(preset=name), table, source), source)  # the file's own values
    check_preset_task(name, cfg.data.task, (overrides or {}).get("data.task"))  # a paper-T run's name too
    paper = (cfg.train.lr, cfg.train.weight_decay)
    for key, value in (overrides or {}).items():
        _set(cfg, key, value, source="override", from_text=isinstance(value, str))
    if is_paper_preset(name) and cfg.train.lr != paper[0] and "train.weight_decay" not in (overrides or {}) \
            and 0 < cfg.train.lr < float("inf"):  # another lr refused by check_ranges gets its line alone
        # a run of a paper preset (--preset RUN) holds the paper's decay only where it kept the preset's lr and decay
        if name == preset or ((shipped := load_config(name).train).lr, shipped.weight_decay) == paper:
            warn_decay_kept(name, *paper, cfg.train.lr)
    return cfg


def config_from_dict(table: dict[str, Any], source: str) -> RunConfig:
    """A RunConfig from `RunConfig.to_dict()`'s output (a run's saved config), checked like a preset."""
    table = dict(table)
    preset = table.pop("preset", DEFAULT_PRESET)
    return check_ranges(_apply_table(RunConfig(preset=str(preset)), table, source), source)


# Allowed ranges of numeric fields: (low, high, low inclusive, high inclusive); None = unbounded. A value outside,
# or NaN/infinite, is an error before any work starts.
RANGES = {
    # data.max_length from 3: a pair's special tokens alone are 3, and below that the tokenizer leaves pairs uncut.
    "data.max_length": (3, None, True, True), "data.max_train_samples": (1, None, True, True),
    "data.max_eval_samples": (1, None, True, True),
    "train.epochs": (0, None, False, True), "train.lr": (0, None, False, True),
    "train.classifier_lr_scale": (0, None, False, True),
    # Upper bounds: past them a run fails deep inside a library (a batch beyond any GLUE training set, more
    # threads than any machine maps), not with a line naming the field.
    "train.batch_size": (1, 2**20, True, True), "train.eval_batch_size": (1, 2**20, True, True),
    "train.weight_decay": (0, None, True, True), "train.adam_beta1": (0, 1, True, False),
    "train.adam_beta2": (0, 1, True, False), "train.adam_epsilon": (0, None, False, True),
    "train.warmup_ratio": (0, 1, True, False), "train.max_grad_norm": (0, None, False, True),
    "train.label_smoothing": (0, 1, True, False), "train.evals_per_epoch": (1, None, True, True),
    "train.ema_decay": (0, 1, True, False), "train.early_stopping_patience": (0, None, True, True),
    "train.packed_token_budget": (0, None, True, True), "train.logging_steps": (1, None, True, True),
    "train.threads": (0, 4096, True, True), "train.checkpoint_steps": (0, None, True, True),
    "train.seed": (0, 2**32 - 1, True, True),  # numpy's and transformers' set_seed range
}


def check_seeds(seeds: list[int], what: str) -> None:
    """Seeds outside train.seed's range (RANGES), for commands that take seeds outside a RunConfig."""
    low, high = RANGES["train.seed"][:2]
    if wrong := [seed for seed in seeds if not isinstance(seed, numbers.Integral) or isinstance(seed, bool)]:
        raise UserError(f"{what} must be integers, got {wrong[0]!r}")  # the Python API's (a TOML's are typed)
    if any(not low <= seed <= high for seed in seeds):
        raise UserError(f"{what} must be between {low} and {high}, got {', '.join(map(str, seeds))}")


def check_ranges(cfg: RunConfig, source: str = "config") -> RunConfig:
    """Refuse values out of range (RANGES), NaN and infinities, naming the field."""
    import math

    for dotted, (low, high, low_ok, high_ok) in RANGES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(cfg, section), key)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{source}: '{dotted}' must be a finite number, got {value}")
        too_low = low is not None and (value < low or (value == low and not low_ok))
        too_high = high is not None and (value > high or (value == high and not high_ok))
        if too_low or too_high:
            bounds = " and ".join(b for b in (
                None if low is None else f"{'at least' if low_ok else 'more than'} {low}",
                None if high is None else f"{'at most' if high_ok else 'less than'} {high}") if b)
            raise UserError(f"{source}: '{dotted}' must be {bounds}, got {value}")
    if cfg.train.max_steps == 0 or cfg.train.max_steps < -1:
        raise UserError(f"{source}: 'train.max_steps' must be -1 (off) or at least 1, got {cfg.train.max_steps}")
    return cfg


def _apply_table(cfg: RunConfig, table: dict[str, Any], source: str) -> RunConfig:
    for section, values in table.items():
        if not isinstance(values, dict):  # `train = 1`, or a key above every [table] (`lr = 1e-4`)
            owner = next((name for name, c in SECTIONS.items() if section in c.__dataclass_fields__), "")
            where = f"; it is [{owner}]'s" if owner else ""
            raise UserError(f"{source}: '{section}' must be a [{section}] table" if section in SECTIONS else
                            f"{source}: key '{section}' is outside any [section]{where}")
        if section not in SECTIONS:
            raise UserError(f"{source}: unknown section [{section}] (expected {', '.join(SECTIONS)})")
        for key, value in values.items():
            _set(cfg, f"{section}.{key}", value, source=source, from_text=False)
    return cfg


def _set(cfg: RunConfig, dotted: str, value: Any, *, source: str, from_text: bool) -> None:
    section, _, key = dotted.partition(".")
    if section not in SECTIONS or not key:
        raise UserError(f"{source}: unknown config key '{dotted}' (use section.key, sections: {', '.join(SECTIONS)})")
    target = getattr(cfg, section)
    fields = {f.name: f for f in dataclasses.fields(target)}
    if key not in fields:
        raise UserError(f"{source}: unknown config key '{dotted}' (known: {', '.join(fields)})")
    hint = typing.get_type_hints(type(target))[key]
    setattr(target, key, _coerce(value, hint, dotted, source, from_text))


def _coerce(value: Any, hint: Any, key: str, source: str, from_text: bool) -> Any:
    """Check (TOML) or parse (command-line text) a value against a field's type hint."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None or (from_text and value.lower() in ("none", "null")):
        if type(None) in allowed:
            return None
        raise UserError(f"{source}: '{key}' cannot be empty")
    for kind in allowed:
        if kind is type(None):
            continue
        origin = typing.get_origin(kind) or kind
        if from_text:
            parsed = _parse_text(value, origin)
            if parsed is not None:
                return parsed
        elif origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        elif origin is str and isinstance(value, os.PathLike):  # the Python API's paths (api.py)
            return os.fspath(value)
        elif isinstance(value, origin) and not (origin is int and isinstance(value, bool)):
            items = typing.get_args(kind)  # list[str]: each item too (a TOML `text_columns = [1]`)
            if origin is list and items and not all(isinstance(item, items[0]) for item in value):
                raise UserError(f"{source}: '{key}' must be a list of {items[0].__name__}, got {value!r}")
            return value
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed if k is not type(None))
    raise UserError(f"{source}: '{key}' must be {names}, got {value!r}")


def _parse_text(text: str, kind: type) -> Any:
    """Parse a command-line string as ``kind``; None when it does not parse."""
    try:
        if kind is bool:
            return {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text.lower())
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is str:
            return text
        if kind is list:
            return [part.strip() for part in text.split(",") if part.strip()]
    except ValueError:
        return None
    return None


def data_config(settings: dict[str, Any], source: str = "options") -> DataConfig:
    """The data section alone (a baseline's, which builds no model) from dotted `data.*` keys, checked as a
    preset's are."""
    cfg = RunConfig()
    for key, value in settings.items():
        if not key.startswith("data."):
            raise UserError(f"{source}: '{key}': a baseline takes only the data.* settings")
        _set(cfg, key, value, source=source, from_text=isinstance(value, str))
    return check_ranges(cfg, source).data


def settings_from(options: dict[str, Any], sets: list[str] | None = None) -> dict[str, Any]:
    """The settings a command gives: its `--set SECTION.KEY=VALUE` items (text, parsed by the field's type later),
    and its named options (dotted key -> value, None = not given) over them."""
    parsed: dict[str, Any] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set '{item}': expected SECTION.KEY=VALUE")
        parsed[key.strip()] = value
    return {**parsed, **{key: value for key, value in options.items() if value is not None}}


def resolve_run_config(preset: str | None, options: dict[str, Any], sets: list[str] | None = None,
                       model_overrides: dict[str, Any] | None = None, base: RunConfig | None = None) -> RunConfig:
    """Preset + named command-line options (dotted key -> value, None = not given) + `--set KEY=VALUE`s.

    Named options win over `--set`; model overrides add to (and replace keys of) the preset's. With `base`
    (a resumed run's saved config), the options apply on top of it instead of a preset.
    """
    overrides = settings_from(options, sets)
    if base is None:
        cfg = load_config(preset, overrides)
        cfg.data = with_data_dir_from_env(cfg.data)
        cfg = with_absolute_paths(cfg)
    else:
        cfg = copy.deepcopy(base)
        cfg.preset = preset or base.preset
        for key, value in overrides.items():
            _set(cfg, key, value, source="override", from_text=isinstance(value, str))
    cfg.model.overrides = {**cfg.model.overrides, **(model_overrides or {})}
    return check_ranges(cfg, "options")
