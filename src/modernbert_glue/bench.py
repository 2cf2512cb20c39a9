"""`bench train` / `bench infer`: input paths side by side on the same SST-2 sentences, in one process.

Paths (all batch `batch_size` sentences):
    padded-128  pad every sentence to 128 tokens (run_glue.py's default)
    dynamic     random batches padded to their longest sentence (the Trainer's default sampler)
    grouped     length-grouped batches padded to their longest (the Trainer's group_by_length)
    packed      the same random batches as `dynamic`, concatenated without padding (packing.py)

Each path runs `warmup` untimed steps, then `steps` timed steps, `repeats` times; the median repeat is
reported. Training steps are forward + backward + AdamW step; inference steps are forward passes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .flops import matmul_tflops

PATHS = ("padded-128", "dynamic", "grouped", "packed")


@dataclass
class BenchConfig:
    model: str = "../shared/models/modernbert-base"
    random_init: bool = True
    overrides: dict | None = None
    mode: str = "train"
    paths: tuple[str, ...] = PATHS
    batch_size: int = 64
    steps: int = 2
    warmup: int = 1
    repeats: int = 3
    bf16: bool = False
    seed: int = 0
    sentences: int = 4096
    row_tokens: int | None = 256  # packed: tokens per packed row (attention cost grows with the row's square)
    lengths: tuple[int, ...] = ()  # long-input mode: fixed sequence lengths instead of paths
    tokens_per_batch: int = 8192  # long-input mode: batch = max(1, tokens_per_batch // length)
    variable_means: tuple[int, ...] = ()  # long-input mode: also lengths drawn around these means (padded, packed)
    token_budget: int | None = None  # packed: pad each batch to this many tokens (one static shape)
    compile: str = ""  # torch.compile mode for the step's forward ("default", "reduce-overhead"); "" = eager


def make_batches(lengths: list[int], path: str, batch_size: int, n_batches: int, seed: int) -> list[list[int]]:
    """Indices of the sentences in each batch. `dynamic` and `packed` draw identical random batches."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    if path == "grouped":  # Trainer-style: megabatches of 50 batches, each sorted by length, then split
        mega = batch_size * 50
        groups = []
        for start in range(0, len(order), mega):
            chunk = sorted(order[start : start + mega], key=lambda i: -lengths[i])
            groups += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        groups = [g for g in groups if len(g) == batch_size]
        picks = rng.permutation(len(groups))[:n_batches]
        return [list(map(int, groups[i])) for i in picks]
    full = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    return [list(map(int, b)) for b in full[:n_batches]]


def collate(path: str, token_ids: list[list[int]], labels: list[int], batch: list[int], pad_id: int,
            row_tokens: int | None = None, token_budget: int | None = None):
    """Model inputs for one batch on one path, and (real tokens, computed token slots)."""
    import torch

    from .packing import budget_rows, pack, row_budget

    seqs = [token_ids[i] for i in batch]
    y = torch.tensor([labels[i] for i in batch])
    real = sum(len(s) for s in seqs)
    if path == "packed":
        packed = pack(seqs, y, pad_id=pad_id, row_tokens=row_budget(seqs, row_tokens),
                      fixed_rows=budget_rows(token_budget, row_tokens))
        return packed, real, packed.input_ids.numel()
    width = 128 if path == "padded-128" else max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s[:width])
        mask[r, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": y}, real, ids.numel()


def run_bench(cfg: BenchConfig, sentences: list[str], labels: list[int]) -> list[dict]:
    """One record per path: real_tokens_per_s, sentences_per_s, padding_fraction, peak_memory_mb, seconds."""
    import torch

    from .flops import flop_model, step_flops
    from .models import build_classifier
    from .memory import peak_mb, reset_peak
    from .tasks import get_task

    unknown = set(cfg.paths) - set(PATHS)
    if unknown:
        raise UserError(f"unknown path(s) {', '.join(sorted(unknown))} (use {', '.join(PATHS)})")
    if cfg.mode not in ("train", "infer"):
        raise UserError(f"bench mode must be train or infer, got '{cfg.mode}'")
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_classifier(cfg.model, get_task("sst2"), random_init=cfg.random_init,
                                        overrides=cfg.overrides or {})
    token_ids = tokenizer(sentences, truncation=True, max_length=128)["input_ids"]
    lengths = [len(t) for t in token_ids]
    device = bench_device()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train(cfg.mode == "train")
    flops = flop_model(model)
    n_batches = cfg.warmup + cfg.steps * cfg.repeats
    results = []
    for path in cfg.paths:
        batches = make_batches(lengths, path, cfg.batch_size, n_batches, cfg.seed)
        if len(batches) < n_batches:
            raise UserError(f"{len(sentences)} sentences give only {len(batches)} batches; need {n_batches}")
        inputs = [to_device(collate(path, token_ids, labels, b, tokenizer.pad_token_id, cfg.row_tokens,
                              cfg.token_budget if path == "packed" else None), device) for b in batches]
        work = [step_flops(flops, [lengths[i] for i in b], train=cfg.mode == "train") for b in batches]
        step = _step_fn(model, optimizer, path, cfg)
        reset_peak()
        sync()
        started = time.perf_counter()
        for batch, _, _ in inputs[: cfg.warmup]:
            step(batch)
        sync()
        warmup_seconds = time.perf_counter() - started  # includes any compiling
        times, real, slots = [], [], []
        for r in range(cfg.repeats):
            chunk = inputs[cfg.warmup + r * cfg.steps : cfg.warmup + (r + 1) * cfg.steps]
            sync()
            started = time.perf_counter()
            for batch, _, _ in chunk:
                step(batch)
            sync()
            times.append(time.perf_counter() - started)
            real.append(sum(c[1] for c in chunk))
            slots.append(sum(c[2] for c in chunk))
        median = sorted(range(cfg.repeats), key=lambda i: times[i])[cfg.repeats // 2]
        first = cfg.warmup + median * cfg.steps
        results.append({
            "path": path,
            "bf16": cfg.bf16,
            "compile": cfg.compile or None,
            "token_budget": cfg.token_budget if path == "packed" else None,
            "real_tokens_per_s": round(real[median] / times[median], 1),
            "sentences_per_s": round(cfg.steps * cfg.batch_size / times[median], 2),
            "padding_fraction": round(1 - sum(real) / sum(slots), 4),
            "peak_memory_mb": peak_mb(),
            "seconds_per_step_median": round(times[median] / cfg.steps, 4),
            "seconds_per_repeat": [round(t, 3) for t in times],
            "warmup_seconds": round(warmup_seconds, 3),
            "model_tflops_per_s": round(sum(work[first : first + cfg.steps]) / times[median] / 1e12, 4),
            "steps": cfg.steps,
            "repeats": cfg.repeats,
        })
    return results


def run_lengths(cfg: BenchConfig, sentences: list[str]) -> list[dict]:
    """Inference throughput and peak memory at fixed input lengths (and, with `variable_means`, at lengths drawn
    around a mean: the ModernBERT paper's Table 2 protocol), built from SST-2 text; lengths past the model's
    position table are reported as unsupported."""

    import torch

    from .models import build_classifier
    from .tasks import get_task

    torch.manual_seed(cfg.seed)
    model, tokenizer = build_classifier(cfg.model, get_task("sst2"), random_init=cfg.random_init,
                                        overrides=cfg.overrides or {})
    model.eval()
    device = bench_device()
    model.to(device)
    pool = [t for ids in tokenizer(sentences, add_special_tokens=False)["input_ids"] for t in ids]
    limit = model.config.max_position_embeddings
    autocast = autocast_for(device.type, cfg.bf16)

    def document(length: int, offset: int) -> list[int]:
        body = length - 2
        start = offset % (len(pool) - body)
        return [tokenizer.cls_token_id, *pool[start : start + body], tokenizer.sep_token_id]

    def measure(record: dict, forward, docs: list[list[int]], slots: int) -> dict:
        times, peak = _time_forwards(forward, cfg, autocast)
        seconds = sorted(times)[len(times) // 2]
        real = sum(map(len, docs))
        return {**record, "supported": True, "batch_size": len(docs),
                "real_tokens_per_s": round(cfg.steps * real / seconds, 1),
                "sentences_per_s": round(cfg.steps * len(docs) / seconds, 3),
                "padding_fraction": round(1 - real / slots, 4), "peak_memory_mb": peak,
                "seconds_per_step_median": round(seconds / cfg.steps, 4),
                "seconds_per_repeat": [round(t, 3) for t in times]}

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


def _time_forwards(forward, cfg: BenchConfig, autocast) -> tuple[list[float], float]:
    """`cfg.repeats` timings of `cfg.steps` forward passes after `cfg.warmup` untimed ones, and peak memory."""
    import torch

    from .memory import peak_mb, reset_peak

    reset_peak()
    times = []
    with torch.inference_mode(), autocast():
        for _ in range(cfg.warmup):
            forward()
        for _ in range(cfg.repeats):
            sync()
            started = time.perf_counter()
            for _ in range(cfg.steps):
                forward()
            sync()
            times.append(time.perf_counter() - started)
    return times, peak_mb()


def bench_device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def to_device(item, device):
    """(inputs, real, slots) with the inputs moved to `device`."""
    batch, real, slots = item
    moved = batch.to(device) if hasattr(batch, "num_sentences") else {k: v.to(device) for k, v in batch.items()}
    return moved, real, slots


def autocast_for(device_type: str, bf16: bool):
    """A context factory: bf16 autocast on `device_type`, or nothing."""
    import contextlib

    import torch

    return (lambda: torch.autocast(device_type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext


def path_forward(model, path: str, compile_mode: str = ""):
    """batch -> model output on an input path: packed batches through PackedClassifier, others as keywords;
    compiled with torch.compile(mode=compile_mode) when one is given."""
    import torch

    from .packing import PackedClassifier

    module = PackedClassifier(model) if path == "packed" else model
    if compile_mode:
        module = torch.compile(module, mode=compile_mode)
    return (lambda b: module(b)) if path == "packed" else (lambda b: module(**b))


def _step_fn(model, optimizer, path: str, cfg: BenchConfig):
    import torch

    autocast = autocast_for(next(model.parameters()).device.type, cfg.bf16)
    forward = path_forward(model, path, cfg.compile)

    def train_step(batch):
        with autocast():
            loss = forward(batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def infer_step(batch):
        with torch.inference_mode(), autocast():
            forward(batch)

    return train_step if cfg.mode == "train" else infer_step


def ratios(results: list[dict], key: str = "real_tokens_per_s") -> dict[str, float]:
    """Each path's rate divided by every other path's: {"packed/dynamic": 2.3, ...}."""
    by_path = {r["path"]: r[key] for r in results}
    return {f"{a}/{b}": round(by_path[a] / by_path[b], 3) for a in by_path for b in by_path if a != b}


def bench(cfg: BenchConfig, data, output: str | None = None) -> dict:
    """Run the paths on a seeded sample of SST-2 train sentences; print a table; write the JSON results file."""
    import json
    from pathlib import Path

    from .data import load_split
    from .provenance import device_name, provenance
    from .tasks import get_task

    if output and Path(output).exists():
        raise UserError(f"{output}: exists (results are not overwritten; choose another --output)")
    train = load_split(data, get_task(data.task), "train")
    sentences, labels = sample(train["sentence"], train["label"], cfg.sentences, cfg.seed)
    long_inputs = cfg.lengths or cfg.variable_means
    results = run_lengths(cfg, sentences) if long_inputs else run_bench(cfg, sentences, labels)
    rate = matmul_tflops(bench_device())
    for r in results:
        if "model_tflops_per_s" in r:
            r["mfu"] = round(r["model_tflops_per_s"] / rate["tflops"], 4)
    report = {
        "benchmark": f"bench {cfg.mode}",
        "config": {k: v for k, v in cfg.__dict__.items()},
        "device": device_name(),
        "matmul_bf16": rate,
        "results": results,
        "ratios_real_tokens_per_s": ratios([r for r in results if r.get("supported", True)]),
        **provenance(),
    }
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report


def sample(sentences: list[str], labels: list[int], n: int, seed: int) -> tuple[list[str], list[int]]:
    """A seeded random sample of n (sentence, label) pairs: the sentences every path of a bench run shares."""
    pick = np.random.default_rng(seed).permutation(len(sentences))[:n]
    return [sentences[int(i)] for i in pick], [int(labels[int(i)]) for i in pick]


def format_table(report: dict) -> str:
    rows = [f"{'path':<12} {'real tok/s':>11} {'sent/s':>8} {'padding':>8} {'s/step':>8} {'peak MB':>8}"]
    for r in report["results"]:
        if not r.get("supported", True):
            rows.append(f"{r['path']:<12} unsupported: {r['reason']}")
            continue
        rows.append(f"{r['path']:<12} {r['real_tokens_per_s']:>11.1f} {r['sentences_per_s']:>8.2f} "
                    f"{r['padding_fraction']:>8.1%} {r['seconds_per_step_median']:>8.3f} {r['peak_memory_mb']:>8.0f}")
    return "\n".join(rows)
