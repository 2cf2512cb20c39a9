"""`--model-override KEY=VALUE` (and a preset's model.overrides): config fields changed before the model is built,
each checked so that what transformers or torch would refuse, or crash on, is one line naming the override."""

from __future__ import annotations

import contextlib
from typing import Any

from .errors import UserError


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings -> dict; values parse as JSON where they can (numbers, booleans), else text."""
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--model-override '{item}': expected KEY=VALUE")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


OVERRIDES_FROM = "--model-override, or the preset's model.overrides"  # where an override may come from
TASK_FIELDS = ("num_labels", "id2label", "label2id", "problem_type")  # load_config sets them from the task


def is_size(key: str) -> bool:
    """A config field that counts or sizes something (num_hidden_layers, hidden_size, ...)."""
    return key.startswith("num_") or key.endswith("_size")


def size_overrides(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The overrides that change the model's size: a run of a 2-layer modernbert-base is another system than one of
    modernbert-base (its name says so: report.runs.system_name), a dropout override is a recipe's setting."""
    return {key: value for key, value in (overrides or {}).items() if is_size(key)}


# BERT's names for its sizes (L=12, H=768, A=12; MiniLM-L6xH384): short enough for a table's row label
SHORT_SIZES = {"num_hidden_layers": "L", "hidden_size": "H", "num_attention_heads": "A"}


def sizes_text(sizes: dict[str, Any], *, short: bool = False) -> str:
    """'num_hidden_layers=2, hidden_size=64, intermediate_size=128', or with `short` 'L2, H64, intermediate_size=128'
    (L, H, A first, the others sorted: one model given its overrides in two orders is one system)."""
    if not short:
        return ", ".join(f"{key}={value}" for key, value in sizes.items())
    named = [f"{letter}{sizes[key]}" for key, letter in SHORT_SIZES.items() if key in sizes]  # in a fixed order:
    return ", ".join(named + [f"{key}={sizes[key]}" for key in sorted(sizes) if key not in SHORT_SIZES])  # one name


def with_overrides(config, path: str, overrides: dict[str, Any]):
    """Rebuild the config from its file with fields changed, so derived fields follow.

    Example: ModernBERT derives `layer_types` (local/global per layer) from `num_hidden_layers` when the
    config is built; setting the attribute afterwards would leave 22 layer types for 2 layers.
    """
    from transformers import PretrainedConfig

    known = config.to_dict()
    for key, value in overrides.items():
        if key in TASK_FIELDS:
            raise UserError(f"model override {key} ({OVERRIDES_FROM}): set from the task's labels (--task, or "
                            "--label-column for a custom task), not by an override")
        if key not in known:
            raise UserError(f"model override {key} ({OVERRIDES_FROM}): the '{config.model_type}' config has no "
                            f"field '{key}' ({path})")
        if is_size(key) and type(value) is int and value < 1:  # a count
            raise UserError(f"model override {key}={value} ({OVERRIDES_FROM}): must be at least 1")
    raw, _ = PretrainedConfig.get_config_dict(path)
    derived = {"layer_types"} - set(overrides) if "num_hidden_layers" in overrides else set()
    merged = {k: v for k, v in raw.items() if k not in derived} | overrides
    with overrides_checked(overrides):
        return type(config).from_dict(merged)


@contextlib.contextmanager
def overrides_checked(overrides: dict[str, Any] | None):
    """With --model-override values, a config or model that transformers refuses is the user's input: one line.
    (huggingface_hub's strict-dataclass errors derive from Exception only.)"""
    from huggingface_hub.errors import StrictDataclassError

    try:
        yield
    # Assertion: vocab_size < pad id; Runtime: a negative dimension; Arithmetic: a division by a zero count
    except (TypeError, ValueError, AssertionError, RuntimeError, ArithmeticError, StrictDataclassError) as exc:
        if not overrides:  # the model folder's own config.json (edited by hand, say)
            raise UserError(f"the model folder's config.json or weights make no model ({_one_line(exc)})") from None
        raise UserError(f"model overrides ({OVERRIDES_FROM}): invalid model config ({_one_line(exc)})") from None


def _one_line(exc: Exception) -> str:
    """The whole message on one line: huggingface_hub's validation errors give the field on the first line and
    what is wrong with it on the next."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:400] or type(exc).__name__
