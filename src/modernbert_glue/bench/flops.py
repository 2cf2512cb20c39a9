"""Model FLOPs of a step and the device's measured matmul rate: what model FLOP utilisation (MFU) is made of.

FLOPs follow the usual convention (Kaplan et al.; PaLM's MFU): a training step costs 6 FLOPs per weight per real
token (forward 2, backward 4), inference 2, plus attention's two products (scores and values, 4 * keys * hidden
per token and layer forward), counted for real tokens only: padding is waste, not work. ModernBERT's local
layers see at most 2 * half-window + 1 keys. Embedding lookups are not matrix products and are not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

HEAD_PREFIXES = ("classifier", "head.", "bert.pooler", "pooler")


@dataclass(frozen=True)
class FlopModel:
    encoder_params: int  # weights applied to every token
    head_params: int  # weights applied once per sentence (pooler/head/classifier)
    hidden: int
    global_layers: int
    local_layers: int
    local_keys: int | None  # keys a token sees in a local layer (None: no local layers)


def flop_model(model) -> FlopModel:
    encoder = head = 0
    for name, p in model.named_parameters():
        if "embeddings" in name:
            continue
        if name.startswith(HEAD_PREFIXES):
            head += p.numel()
        else:
            encoder += p.numel()
    cfg = model.config
    layers = cfg.num_hidden_layers
    every = getattr(cfg, "global_attn_every_n_layers", None)
    window = getattr(cfg, "sliding_window", None) if every else None
    global_layers = len(range(0, layers, every)) if every else layers
    return FlopModel(encoder_params=encoder, head_params=head, hidden=cfg.hidden_size, global_layers=global_layers,
                     local_layers=layers - global_layers, local_keys=2 * window + 1 if window else None)


def step_flops(fm: FlopModel, lengths: list[int], *, train: bool) -> float:
    """Model FLOPs of one step over sentences of these token lengths."""
    per_weight = 6 if train else 2
    tokens = sum(lengths)
    pairs = sum(n * n for n in lengths) * fm.global_layers
    if fm.local_layers:
        pairs += sum(n * min(n, fm.local_keys) for n in lengths) * fm.local_layers
    attention = per_weight * 2 * fm.hidden * pairs  # 4 * hidden per (query, key) pair forward; x3 training
    return per_weight * (fm.encoder_params * tokens + fm.head_params * len(lengths)) + attention


def matmul_tflops(device, bf16: bool, size: int | None = None, repeats: int = 10) -> dict:
    """Measured matrix-product rate of `device` in the dtype the timed steps use (bf16 or fp32): MFU's denominator.

    The dtype follows the steps because a CPU without bf16 instructions emulates bf16 products, two orders of
    magnitude slower than fp32 there: a bf16 rate would be the wrong denominator and take minutes to measure."""
    import torch

    dtype = torch.bfloat16 if bf16 else torch.float32
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    times = []
    for i in range(repeats + 3):
        _sync(device)
        started = time.perf_counter()
        a @ b
        _sync(device)
        if i >= 3:  # warm-up products are not timed
            times.append(time.perf_counter() - started)
    seconds = sorted(times)[len(times) // 2]
    tflops = significant(2 * size**3 / seconds / 1e12)
    return {"size": size, "dtype": str(dtype).removeprefix("torch."), "tflops": tflops}


def significant(value: float, digits: int = 4) -> float:
    """`value` to `digits` significant digits: a rate from a slow device or a tiny model is not rounded to 0."""
    return float(f"{value:.{digits}g}")


def add_mfu(records: list[dict], rate: dict) -> None:
    """Model FLOP utilisation of each timed record against the measured matrix-product rate."""
    for r in records:
        if "model_tflops_per_s" in r:
            r["mfu"] = significant(r["model_tflops_per_s"] / rate["tflops"])


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()
