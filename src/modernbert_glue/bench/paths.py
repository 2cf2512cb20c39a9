"""`bench train` / `bench infer`: input paths side by side on SST-2 sentences, in one process. padded, dynamic and
packed run the same batches; grouped runs length-grouped batches drawn at random, whose sentences are shorter or
longer than the others' over a few steps: compare paths by real tokens/s, which allows for that.

Paths (all batch `batch_size` sentences):
    padded      pad every sentence to 128 tokens (run_glue.py's default; `padded-128` in earlier results)
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

from ..device import autocast as amp
from ..device import default_device, peak_mb, reset_peak, sync
from ..errors import UserError
from ..inputs import INPUT_PATHS, PACKED_ROW_TOKENS, check_token_budget, resolve_input_path
from ..inputs import collate as collate_inputs

PATHS = INPUT_PATHS[1:]  # every path but auto
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
MAX_LENGTH = 128  # padded: run_glue.py's default max_length


@dataclass
class BenchConfig:
    model: str = "answerdotai/ModernBERT-base"  # offline: pass a local folder with its config and tokenizer
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
    row_tokens: int | None = PACKED_ROW_TOKENS  # packed: tokens per packed row
    lengths: tuple[int, ...] = ()  # long-input mode: fixed sequence lengths instead of paths
    tokens_per_batch: int = 8192  # long-input mode: batch = max(1, tokens_per_batch // length)
    variable_means: tuple[int, ...] = ()  # long-input mode: also lengths drawn around these means (padded, packed)
    token_budget: int | None = None  # packed: pad each batch to this many tokens (one static shape)
    compile: str = ""  # torch.compile mode for the step's forward ("default", "reduce-overhead"); "" = eager

    def __post_init__(self):
        """Every option checked before any work: one line for a value that would fail (or hang) later."""
        if self.mode not in ("train", "infer"):
            raise UserError(f"bench mode must be train or infer, got '{self.mode}'")
        self.paths = tuple(resolve_input_path(p, "", "bench", "cpu") if p == "padded-128" else p for p in self.paths)
        unknown = set(self.paths) - set(PATHS)
        if unknown or not self.paths:
            raise UserError(f"unknown path(s) {', '.join(sorted(unknown)) or '(none given)'} (use {', '.join(PATHS)})")
        for name in ("batch_size", "steps", "repeats"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if any(not isinstance(n, int) or isinstance(n, bool) for n in (*self.lengths, *self.variable_means)):
            raise UserError(f"--lengths and --variable-means are whole numbers of tokens, got "
                            f"{list(self.lengths) or ''}{list(self.variable_means) or ''}")  # (the Python API's)
        if any(n < 2 for n in self.lengths) or any(n < 1 for n in self.variable_means):
            raise UserError(f"--lengths must be at least 2 tokens and --variable-means at least 1, got "
                            f"{list(self.lengths) or ''}{list(self.variable_means) or ''}")
        if self.compile not in COMPILE_MODES:
            raise UserError(f"--compile must be none or one of {', '.join(COMPILE_MODES[1:])}, got '{self.compile}'")
        if self.token_budget and (self.lengths or self.variable_means):
            raise UserError("--token-budget pads the packed path's batches; --lengths and --variable-means build "
                            "their own: leave it out")
        check_token_budget(self.token_budget, "packed" if "packed" in self.paths else ",".join(self.paths),
                           "--token-budget", fix="--paths packed")


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
    """Model inputs for one batch on one path (inputs.collate), and (real tokens, computed token slots).
    `row_tokens` widens packed rows beyond inputs.PACKED_ROW_TOKENS (long documents)."""
    seqs = [token_ids[i] for i in batch]
    y = [labels[i] for i in batch]
    real = sum(len(s) for s in seqs)
    if path == "packed" and row_tokens and row_tokens != PACKED_ROW_TOKENS:
        from ..packing import pack, row_budget

        packed = pack(seqs, y, pad_id=pad_id, row_tokens=row_budget(seqs, row_tokens))
        return packed, real, packed.input_ids.numel()
    inputs = collate_inputs(path, seqs, pad_id, MAX_LENGTH, labels=y, token_budget=token_budget)
    slots = inputs.input_ids.numel() if path == "packed" else inputs["input_ids"].numel()
    return inputs, real, slots


def run_bench(cfg: BenchConfig, sentences: list[str], labels: list[int]) -> list[dict]:
    """One record per path: real_tokens_per_s, sentences_per_s, padding_fraction, peak_memory_mb, seconds."""
    import torch

    from ..models import build_classifier
    from ..tasks import get_task
    from .flops import flop_model, significant, step_flops

    paths = cfg.paths
    torch.manual_seed(cfg.seed)
    model, tokenizer = build_classifier(cfg.model, get_task("sst2"), random_init=cfg.random_init,
                                        overrides=cfg.overrides or {})
    token_ids = tokenizer(sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    lengths = [len(t) for t in token_ids]
    device = default_device()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train(cfg.mode == "train")
    flops = flop_model(model)
    n_batches = cfg.warmup + cfg.steps * cfg.repeats
    results = []
    for path in paths:
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
            "model_tflops_per_s": significant(sum(work[first : first + cfg.steps]) / times[median] / 1e12),
            "steps": cfg.steps,
            "repeats": cfg.repeats,
        })
    return results


def to_device(item, device):
    """(inputs, real, slots) with the inputs moved to `device`."""
    batch, real, slots = item
    moved = batch.to(device) if hasattr(batch, "num_sentences") else {k: v.to(device) for k, v in batch.items()}
    return moved, real, slots


def path_forward(model, path: str, compile_mode: str = ""):
    """batch -> model output on an input path: packed batches through PackedClassifier, others as keywords;
    compiled with torch.compile(mode=compile_mode) when one is given."""
    import torch

    from ..packing import PackedClassifier

    module = PackedClassifier(model) if path == "packed" else model
    if compile_mode:
        module = torch.compile(module, mode=compile_mode)
    return (lambda b: module(b)) if path == "packed" else (lambda b: module(**b))


def _step_fn(model, optimizer, path: str, cfg: BenchConfig):
    import torch

    autocast = (lambda: amp(next(model.parameters()).device.type, cfg.bf16))
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


def sample(sentences: list[str], labels: list[int], n: int, seed: int) -> tuple[list[str], list[int]]:
    """A seeded random sample of n (sentence, label) pairs: the sentences every path of a bench run shares."""
    pick = np.random.default_rng(seed).permutation(len(sentences))[:n]
    return [sentences[int(i)] for i in pick], [int(labels[int(i)]) for i in pick]
