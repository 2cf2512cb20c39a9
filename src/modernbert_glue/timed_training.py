"""Whole training runs of one input path, timed: what `bench train`'s few steps extrapolate, measured in full.

A plain PyTorch loop over the recipe (AdamW, linear warmup and decay, gradient clipping, batches of random
sentences each epoch) on the bench's collated inputs, so that the time is the input path's and not the
Trainer's bookkeeping. All batches are collated before the clock starts (timed apart as `collate_seconds`),
as a DataLoader with workers would prepare them while the GPU runs. Used by benchmarks/gpu_protocol.py.
"""

from __future__ import annotations

import math
import time

import numpy as np

from .bench.paths import BenchConfig, collate, path_forward, to_device
from .config import TrainConfig
from .device import autocast as amp
from .device import default_device, sync


def epoch_batches(n: int, batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """A fresh random order per epoch, cut into batches; the last, shorter batch is kept (as the Trainer does)."""
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(n)
        batches += [list(map(int, order[i : i + batch_size])) for i in range(0, n, batch_size)]
    return batches


def optimizer_for(model, recipe: TrainConfig, total_steps: int):
    """AdamW with the recipe's settings, no decay on biases and norms (as the Trainer), linear warmup + decay."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": recipe.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    fused = {"fused": True} if next(model.parameters()).is_cuda else {}
    opt = torch.optim.AdamW(groups, lr=recipe.lr, betas=(recipe.adam_beta1, recipe.adam_beta2),
                            eps=recipe.adam_epsilon, **fused)
    warmup = math.ceil(recipe.warmup_ratio * total_steps)
    return opt, get_linear_schedule_with_warmup(opt, warmup, total_steps)


def train_epochs(cfg: BenchConfig, path: str, recipe: TrainConfig, token_ids: list[list[int]], labels: list[int],
                 dev: tuple[list[list[int]], list[int]] | None = None) -> dict:
    """Train a fresh model for `recipe.epochs` epochs on `path`; returns times, rates, losses, dev accuracy."""
    import torch

    from .device import peak_mb, reset_peak
    from .models import build_classifier
    from .tasks import get_task

    torch.manual_seed(cfg.seed)
    model, tokenizer = build_classifier(cfg.model, get_task("sst2"), random_init=cfg.random_init,
                                        overrides=cfg.overrides or {})
    device = default_device()
    model.to(device).train()
    epochs = int(recipe.epochs)
    batches = epoch_batches(len(token_ids), cfg.batch_size, epochs, cfg.seed)
    started = time.perf_counter()
    budget = cfg.token_budget if path == "packed" else None
    inputs = [collate(path, token_ids, labels, b, tokenizer.pad_token_id, cfg.row_tokens, budget) for b in batches]
    collate_seconds = time.perf_counter() - started
    forward = path_forward(model, path, cfg.compile)
    autocast = (lambda: amp(device.type, cfg.bf16))
    opt, schedule = optimizer_for(model, recipe, len(batches))
    losses = torch.zeros(len(batches), device=device)
    reset_peak()
    sync()
    started = time.perf_counter()
    for i, item in enumerate(inputs):
        batch, _, _ = to_device(item, device)
        with autocast():
            loss = forward(batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.max_grad_norm)
        opt.step()
        schedule.step()
        opt.zero_grad(set_to_none=True)
        losses[i] = loss.detach()
    sync()
    seconds = time.perf_counter() - started
    real = sum(item[1] for item in inputs)
    slots = sum(item[2] for item in inputs)
    per_epoch = len(batches) // epochs
    record = {
        "path": path, "bf16": cfg.bf16, "compile": cfg.compile or None, "token_budget": budget,
        "epochs": epochs, "steps": len(batches), "batch_size": cfg.batch_size, "sentences": len(token_ids),
        "train_seconds": round(seconds, 3), "collate_seconds": round(collate_seconds, 3),
        "real_tokens_per_s": round(real / seconds, 1), "sentences_per_s": round(epochs * len(token_ids) / seconds, 2),
        "padding_fraction": round(1 - real / slots, 4), "peak_memory_mb": peak_mb(),
        "mean_loss_first_epoch": round(float(losses[:per_epoch].mean()), 4),
        "mean_loss_last_epoch": round(float(losses[-per_epoch:].mean()), 4),
    }
    if dev:
        record["dev_accuracy"] = _accuracy(model, path, dev, tokenizer.pad_token_id, cfg, autocast)
    return record


def _accuracy(model, path: str, dev: tuple[list[list[int]], list[int]], pad_id: int, cfg: BenchConfig,
              autocast) -> float:
    import torch

    ids, labels = dev
    model.eval()
    forward = path_forward(model, path)  # eager: evaluation batches have other shapes than training's
    right = 0
    with torch.inference_mode(), autocast():
        for start in range(0, len(ids), 256):
            chunk = list(range(start, min(start + 256, len(ids))))
            batch, _, _ = to_device(collate(path, ids, labels, chunk, pad_id, cfg.row_tokens), default_device())
            logits = forward(batch).logits
            right += int((logits.argmax(-1).cpu() == torch.tensor([labels[i] for i in chunk])).sum())
    return round(right / len(ids), 4)
