"""What the report derives from the run folders beyond their own metrics: paired tests between systems and
architecture facts (parameter count included) read from each saved model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..evaluation.metrics import REGRESSION, holm, mcnemar, paired_bootstrap_metric
from ..evaluation.runfolder import read_json
from .runs import Run, pairs, task_metrics


def pairwise_tests(runs: list[Run], name: str) -> list[dict]:
    """For every pair of runs evaluated on `name`, on the rows both have: a paired bootstrap of the task's main
    metric; for classifiers also McNemar's test on correctness (accuracy). Each test's p also adjusted over the
    set's pairs (`p_holm`): with five systems, ten pairs are tested at once. No other test is made: every p the
    report holds is shown and adjusted (a bootstrap of accuracy beside McNemar would be a third, unadjusted)."""
    main = task_metrics(runs)[0]
    regression = main in REGRESSION
    out = []
    for a, b in pairs(runs, name):
        rows_a = {row[0]: row for row in a.predictions[name]}
        rows_b = {row[0]: row for row in b.predictions[name]}
        shared = sorted(rows_a.keys() & rows_b.keys())
        if not shared:
            continue
        labels = np.array([rows_a[i][2] for i in shared])
        pred_a, pred_b = np.array([rows_a[i][3] for i in shared]), np.array([rows_b[i][3] for i in shared])
        test = {"a": a.label, "b": b.label, "n": len(shared),
                "main_metric": paired_bootstrap_metric(labels, pred_a, pred_b, main, regression=regression)}
        if not regression:
            ca, cb = pred_a == labels, pred_b == labels
            test.update(accuracy_a=float(ca.mean()), accuracy_b=float(cb.mean()), mcnemar=mcnemar(ca, cb))
        out.append(test)
    for key, p in (("main_metric", "p"), ("mcnemar", "p_exact")):
        tests = [t for t in out if key in t]
        for t, adjusted in zip(tests, holm([t[key][p] for t in tests])):
            t[key]["p_holm"] = adjusted
    return out


def architecture(run: Run) -> dict | None:
    """Architecture facts read from the run's saved config and tokenizer (None for non-transformer baselines)."""
    folder = run.folder / "model"
    if not (folder / "config.json").is_file():
        return None
    c = read_json(folder / "config.json")
    tok = folder / "tokenizer.json"
    tokenizer = read_json(tok).get("model", {}).get("type", "?") if tok.is_file() else "?"
    if "layer_types" in c or "global_attn_every_n_layers" in c:  # ModernBERT-style alternating attention
        attention = _attention_pattern(c)
        rope = c.get("rope_parameters") or {}
        full = rope.get("full_attention", {}).get("rope_theta", c.get("global_rope_theta"))
        local = rope.get("sliding_attention", {}).get("rope_theta", c.get("local_rope_theta"))
        position = f"RoPE (θ {full:g} global, {local:g} local)" if full and local else "RoPE"
        pooling = f"{c.get('classifier_pooling', 'cls')} pooling + dense head"
    else:
        attention = "global (full) in every layer"
        kind = c.get("position_embedding_type", "absolute")
        position = "learned absolute" if kind == "absolute" else kind
        pooling = "CLS + pooler (dense, tanh)" if c.get("model_type") in ("bert", "roberta") else "?"
    start = run.metrics.get("init_from")  # --init-from: the model it started from, as its last folders name it
    warm = f"; warm start from {'/'.join(Path(start).parts[-3:])}" if isinstance(start, str) and start else ""
    return {
        "system": run.label,
        "weights": ("random weights" if run.random_init else "pretrained, fine-tuned") + warm,
        "model_type": c.get("model_type"),
        "parameters": safetensors_parameters(folder / "model.safetensors"),
        "layers": c.get("num_hidden_layers"),
        "hidden_size": c.get("hidden_size"),
        "attention_heads": c.get("num_attention_heads"),
        "vocab_size": c.get("vocab_size"),
        "tokenizer": tokenizer,
        "max_positions": c.get("max_position_embeddings"),
        "position_embedding": position,
        "attention": attention,
        "pooling": pooling,
    }


def _attention_pattern(c: dict) -> str:
    """Which layers attend globally, counted from 1, and the sliding window of the others: from layer_types
    (transformers 5) or, before it, from global_attn_every_n_layers (ModernBERT's layer i, from 0, is global when
    i % n == 0: layers 1, 1 + n, ..., so a model of fewer than n + 1 layers has one global layer, its first)."""
    window = f"sliding window {c.get('local_attention')}"
    global_layers = _global_layers(c)
    if global_layers is None:  # no layer count to place them by
        every = c["global_attn_every_n_layers"]
        return f"global every {every}{_ordinal(every)} layer from the first, {window} otherwise"
    full, layers = global_layers
    if len(full) == layers:
        return "global (full) in every layer"
    if not full:
        return f"{window} in every layer"
    if len(full) == 1:
        return f"global in layer {full[0] + 1} only, {window} otherwise"
    steps = {b - a for a, b in zip(full, full[1:])}
    step = steps.pop() if full[0] == 0 and len(steps) == 1 else None
    every = f" (every {step}{_ordinal(step)} from the first)" if step else ""
    return f"global in layers {', '.join(str(i + 1) for i in full)}{every}, {window} otherwise"


def _global_layers(c: dict) -> tuple[list[int], int] | None:
    """(the global layers' indices from 0, the number of layers), or None where the config does not say."""
    types = c.get("layer_types")
    if types:
        return [i for i, t in enumerate(types) if t == "full_attention"], len(types)
    layers = c.get("num_hidden_layers")
    if not isinstance(layers, int):
        return None
    return [i for i in range(layers) if i % c["global_attn_every_n_layers"] == 0], layers


def _ordinal(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def safetensors_parameters(path: Path) -> int | None:
    """Parameter count from a safetensors header (no weights loaded)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        return int(sum(int(np.prod(t["shape"])) for k, t in header.items() if k != "__metadata__"))
    except (struct.error, ValueError, KeyError, TypeError, AttributeError, MemoryError, OverflowError):
        raise UserError(f"{path}: not a readable safetensors file (damaged or cut short)") from None
