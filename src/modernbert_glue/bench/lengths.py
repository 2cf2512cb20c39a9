"""`bench infer --lengths/--variable-means`: inference at fixed input lengths and at lengths drawn around a mean
(the ModernBERT paper's Table 2 protocol), padded and packed."""

from __future__ import annotations

import time

import numpy as np

from ..device import autocast as amp
from ..device import default_device, peak_mb, reset_peak, sync
from .flops import flop_model, significant, step_flops
from .paths import BenchConfig, collate, path_forward, to_device


def run_lengths(cfg: BenchConfig, sentences: list[str]) -> list[dict]:
    """Inference throughput and peak memory at fixed input lengths (and, with `variable_means`, at lengths drawn
    around a mean: the ModernBERT paper's Table 2 protocol), built from SST-2 text; lengths past the model's
    position table are reported as unsupported."""

    import torch

    from ..models import build_classifier
    from ..tasks import get_task

    torch.manual_seed(cfg.seed)
    model, tokenizer = build_classifier(cfg.model, get_task("sst2"), random_init=cfg.random_init,
                                        overrides=cfg.overrides or {})
    model.eval()
    device = default_device()
    model.to(device)
    pool = [t for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"] for t in ids]
    limit = model.config.max_position_embeddings
    flops = flop_model(model)
    autocast = (lambda: amp(device.type, cfg.bf16))

    def document(length: int, offset: int) -> list[int]:
        body = length - 2
        start = offset % (len(pool) - body)
        return [tokenizer.cls_token_id, *pool[start : start + body], tokenizer.sep_token_id]

    def measure(record: dict, forward, docs: list[list[int]], slots: int) -> dict:
        times, peak, warmup = _time_forwards(forward, cfg, autocast)
        seconds = sorted(times)[len(times) // 2]
        real = sum(map(len, docs))
        work = cfg.steps * step_flops(flops, list(map(len, docs)), train=False)
        return {**record, "supported": True, "batch_size": len(docs),
                "real_tokens_per_s": round(cfg.steps * real / seconds, 1),
                "sentences_per_s": round(cfg.steps * len(docs) / seconds, 3),
                "padding_fraction": round(1 - real / slots, 4), "peak_memory_mb": peak,
                "seconds_per_step_median": round(seconds / cfg.steps, 4),
                "seconds_per_repeat": [round(t, 3) for t in times], "warmup_seconds": round(warmup, 3),
                "model_tflops_per_s": significant(work / seconds / 1e12)}

    results = []
    for length in cfg.lengths:
        record = {"path": f"fixed-{length}", "length": length, "model_max_positions": limit}
        if length > limit:
            results.append({**record, "supported": False, "reason": f"the model has {limit} positions"})
            continue
        docs = [document(length, r * length) for r in range(max(1, cfg.tokens_per_batch // length))]
        inputs = {"input_ids": torch.tensor(docs, device=device),
                  "attention_mask": torch.ones(len(docs), length, dtype=torch.long, device=device)}
        results.append(measure(record, lambda: model(**inputs), docs, len(docs) * length))
    rng = np.random.default_rng(cfg.seed)
    for mean in cfg.variable_means:
        longest = 2 * mean
        record = {"length": longest, "mean_length": mean, "model_max_positions": limit}
        if longest > limit:
            results += [{**record, "path": f"variable-{mean}-{how}", "supported": False,
                         "reason": f"the model has {limit} positions"} for how in ("padded", "packed")]
            continue
        docs = [document(n, i * longest) for i, n in enumerate(variable_lengths(rng, mean, cfg.tokens_per_batch))]
        everyone, no_labels = list(range(len(docs))), [0] * len(docs)
        padded, _, slots = to_device(collate("dynamic", docs, no_labels, everyone, tokenizer.pad_token_id), device)
        results.append(measure({**record, "path": f"variable-{mean}-padded"}, lambda: model(**padded), docs, slots))
        if model.config.model_type in ("modernbert", "bert"):
            docs = [docs[i] for i in first_fit_order(list(map(len, docs)), longest)]
            packed, _, slots = to_device(collate("packed", docs, no_labels, everyone, tokenizer.pad_token_id,
                                                 row_tokens=longest), device)
            forward = path_forward(model, "packed")
            results.append(measure({**record, "path": f"variable-{mean}-packed"}, lambda: forward(packed),
                                   docs, slots))
    return results


def first_fit_order(lengths: list[int], width: int) -> list[int]:
    """An order of the documents that `pack` (which fills rows in order) turns into first-fit-decreasing rows:
    long documents first, each shorter one into the first row with room, so rows of `width` carry little padding."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        row = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if row is None:
            rows.append([])
            room.append(width)
            row = len(rows) - 1
        rows[row].append(i)
        room[row] -= lengths[i]
    return [i for row in rows for i in row]


def variable_lengths(rng, mean: int, tokens: int) -> list[int]:
    """Document lengths for one batch of about `tokens` tokens: normal around `mean` with standard deviation
    mean / 4, clipped to [16, 2 * mean] (our reading of the paper's "variable length" inputs)."""
    lengths = []
    while sum(lengths) < tokens or not lengths:
        lengths.append(int(np.clip(round(rng.normal(mean, mean / 4)), min(16, 2 * mean), 2 * mean)))
    return lengths


def _time_forwards(forward, cfg: BenchConfig, autocast) -> tuple[list[float], float, float]:
    """`cfg.repeats` timings of `cfg.steps` forward passes after `cfg.warmup` untimed ones (their time, the
    third value), and peak memory."""
    import torch

    reset_peak()
    times = []
    with torch.inference_mode(), autocast():
        sync()
        started = time.perf_counter()
        for _ in range(cfg.warmup):
            forward()
        sync()
        warmup = time.perf_counter() - started
        for _ in range(cfg.repeats):
            sync()
            started = time.perf_counter()
            for _ in range(cfg.steps):
                forward()
            sync()
            times.append(time.perf_counter() - started)
    return times, peak_mb(), warmup


