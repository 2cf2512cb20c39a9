"""The training engine's step: forward, loss, backward, clipping and AdamW in one function, with nothing in it
that waits for the device (no `.item()`, no data-dependent shapes), so that on CUDA the whole step can be
captured once per static shape and replayed (capture.py), and on a CPU runs eager or compiled.

The optimizer is the HF Trainer's: AdamW (fused) with its parameter groups (no decay on biases and norms, by
the Trainer's own rule; `parameter_groups`, which the Trainer path uses too) and the schedule from
transformers' `get_scheduler`, warmup counted as the Trainer counts it. The learning rate is a tensor the schedule fills each step, so a replayed step reads the new value.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter

import torch
from torch import nn

from ..config import TrainConfig
from ..device import autocast
from ..errors import UserError
from ..packing import PackedBatch, PackedClassifier

# Where `compile = auto` compiles: a GPU step is bound by kernel launches, which inductor's fusion cuts; on our
# 2-core CPUs compiling the tiny test model alone took ~65 s, more than its training.
COMPILE_AUTO = {"cuda": True, "cpu": False}


def decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of the parameters that get weight decay: transformers 5's Trainer.get_decay_parameter_names (not
    inside a LayerNorm, and no bias or norm in the name). Restated here because importing the Trainer imports
    `datasets`, which the engine runs without; tests check it against the Trainer's groups."""
    from transformers.trainer_pt_utils import get_parameter_names

    forbidden = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
    return set(get_parameter_names(model, [nn.LayerNorm], forbidden))


# The classification layer: `classifier` in BERT's and ModernBERT's sequence classifiers (under PackedClassifier,
# `model.classifier`); the layer that --init-from replaces with a fresh one.
CLASSIFIER = re.compile(r"(?:^|\.)classifier\.")


def parameter_groups(model: nn.Module, t: TrainConfig) -> list[dict]:
    """AdamW's parameter groups, for the Trainer and the engine alike: weight decay or none (the Trainer's rule, or
    decay on all with train.decay_norms_and_biases: the "none" groups then stay empty),
    and, when train.classifier_lr_scale is not 1, the classification layer in groups of its own whose rate is
    that multiple of train.lr (the schedule scales every group alike)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = {n for n, _ in named} if t.decay_norms_and_biases else decay_parameter_names(model)
    heads = (None,) if t.classifier_lr_scale == 1 else (False, True)
    groups = []
    for head in heads:
        for decayed in (True, False):
            params = [p for n, p in named if (n in decay) == decayed
                      and (head is None or bool(CLASSIFIER.search(n)) == head)]
            group = {"params": params, "weight_decay": t.weight_decay if decayed else 0.0}
            if head:
                group["lr"] = t.lr * t.classifier_lr_scale
            groups.append(group)
    if t.classifier_lr_scale != 1 and not any(g["params"] for g in groups if "lr" in g):
        raise UserError("train.classifier_lr_scale: the model has no trainable `classifier` layer")
    return groups


def warmup_steps(warmup: float, total: int) -> int:
    """TrainingArguments.get_warmup_steps: a value below 1 is a ratio of the total steps, rounded up."""
    return int(warmup) if warmup >= 1 else math.ceil(total * warmup)


def warmup_warning(schedule, t: TrainConfig, total: int) -> str | None:
    """What a run too short for its warmup (a few rows, a quick check) is told before it trains, by both loops: its
    learning rate never reaches train.lr, and with one step (warmup starts at 0) nothing is trained at all."""
    factors = getattr(schedule, "lr_lambdas", None)
    if not factors or warmup_steps(t.warmup_ratio, total) < total or factors[0](0) >= 1:  # (constant: no warmup)
        return None
    top = factors[0](total - 1)  # rates rise through warmup: the last step's is the highest
    fix = "train on more data or epochs, or lower train.warmup_ratio"
    if top == 0:
        return f"the run's {total} step(s) are all warmup at a learning rate of 0: nothing is trained; {fix}"
    return (f"the run's {total} steps all fall within warmup: the learning rate reaches {top * t.lr:.3g}, not "
            f"train.lr {t.lr:g}; {fix}")


def build_optimizer(model: nn.Module, t: TrainConfig, total: int, device: torch.device):
    """(AdamW, schedule) as the Trainer builds them for `t`, the learning rate a tensor on `device`."""
    from transformers import get_scheduler

    groups = parameter_groups(model, t)
    for group in groups:  # a tensor rate, as the default's: a replayed step reads the value the schedule set
        if "lr" in group:
            group["lr"] = torch.tensor(group["lr"], device=device)
    lr = torch.tensor(t.lr, device=device)
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(t.adam_beta1, t.adam_beta2), eps=t.adam_epsilon,
                                  fused=True, capturable=device.type == "cuda")
    # The groups keep their tensors; the default goes back to the float peak: the polynomial schedule reads it
    # at every step, and the shared tensor would by then hold the last step's rate (0 after a 1-step warmup).
    optimizer.defaults["lr"] = t.lr
    schedule = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=warmup_steps(t.warmup_ratio, total),
                             num_training_steps=total)
    return optimizer, schedule


def scheduled_lr(schedule, peak: float, step: int) -> float:
    """The learning rate of step `step` (from 0) for peak rate `peak`, computed on the host: reading the
    device tensor would wait for the device. The value the Trainer logs."""
    return peak * schedule.lr_lambdas[0](step)


def encoder_layers(model: PackedClassifier) -> nn.ModuleList:
    hf = model.model
    return hf.model.layers if model.kind == "modernbert" else hf.bert.encoder.layer


def compile_layers(model: PackedClassifier, backend: str = "inductor") -> int:
    """torch.compile, in place (weights and saved names unchanged), the encoder layers whose structure other
    layers share, with the batch's rows dimension dynamic. Layers share their code, so each kind of layer
    compiles once for every layer of that kind and every step shape of the run: one compilation for all of
    ModernBERT-base, where a whole-model compile of one shape took 57.7 s on the H200. ModernBERT's first layer
    (no attention norm) is a kind of its own: it runs eager inside the captured step rather than cost a second
    compilation for 1 layer in 22. Returns how many layers it compiled."""
    layers = list(encoder_layers(model))
    kinds = Counter(_structure(layer) for layer in layers)
    shared = [layer for layer in layers if kinds[_structure(layer)] > 1]
    for layer in shared:
        # The hook runs before the compiled forward, so the marks reach the first compilation; without them
        # the second shape would compile every kind again.
        layer.register_forward_pre_hook(_rows_dynamic, with_kwargs=True)
        layer.forward = torch.compile(layer.forward, backend=backend)
    return len(shared)


def _structure(layer: nn.Module) -> tuple:
    return tuple((name, type(module).__name__) for name, module in layer.named_modules())


def _rows_dynamic(module: nn.Module, args: tuple, kwargs: dict) -> None:
    """Mark dimension 0 (the batch's rows) of a layer's hidden states, and of every input with as many rows
    (masks, rotary tables), dynamic. `maybe_`: a size the graph must specialise on (1) stays static."""
    tensors = list(_tensors((*args, *kwargs.values())))
    for t in tensors:
        if t.shape[0] == tensors[0].shape[0]:
            torch._dynamo.maybe_mark_dynamic(t, 0)


def _tensors(values):
    for value in values:
        if isinstance(value, (tuple, list)):
            yield from _tensors(value)
        elif torch.is_tensor(value) and value.dim() > 0:
            yield value


class TrainStep:
    """One optimizer step on a static PackedBatch. `graphs` (filled by capture.capture_step on CUDA) maps a
    batch's rows to its captured graph; any other shape runs eagerly."""

    def __init__(self, model: PackedClassifier, optimizer, t: TrainConfig, bf16: bool, device: torch.device):
        self.model, self.optimizer, self.bf16, self.device = model, optimizer, bf16, device
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.max_grad_norm, self.label_smoothing = t.max_grad_norm, t.label_smoothing
        self.graphs: dict[int, object] = {}
        # Why a compiled capture failed (capture.capture_step): from then on every step runs without torch.compile.
        self.uncompiled: str | None = None

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the real sentences (empty slots are labelled -100, the ignore_index)."""
        return nn.functional.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)

    def body(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The step itself, grads set to None before it: (loss, gradient norm before clipping)."""
        from torch.profiler import (
            record_function,  # named regions: the device script's time split
        )

        uncompiled = torch.compiler.set_stance("force_eager") if self.uncompiled else contextlib.nullcontext()
        with uncompiled, record_function("forward"), autocast(self.device.type, self.bf16):
            logits = self.model.logits(batch)
            loss = self.loss(logits, batch.labels)
        with record_function("backward"):
            loss.backward()
        with record_function("clip"):  # foreach norm and scale: no host sync
            norm = nn.utils.clip_grad_norm_(self.params, self.max_grad_norm, foreach=True)
        with record_function("optimizer"):
            self.optimizer.step()
        return loss.detach(), norm

    def __call__(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        captured = self.graphs.get(batch.input_ids.shape[0])
        if captured is not None:
            return captured.replay(batch)
        self.optimizer.zero_grad(set_to_none=True)
        return self.body(batch)

    @torch.inference_mode()
    def logits(self, batch: PackedBatch) -> torch.Tensor:
        """Evaluation forward. Eager even where the layers are compiled: evaluation shapes and inference mode
        would each compile again, for a few batches per evaluation."""
        with torch.compiler.set_stance("force_eager"), autocast(self.device.type, self.bf16):
            return self.model.logits(batch).float()


def compile_setting(setting: str, device_type: str) -> bool:
    """Whether train.compile (auto, on, off) compiles on this device type ('cuda' or 'cpu')."""
    value = setting.strip().lower()
    if value not in ("auto", "on", "off"):
        raise UserError(f"train.compile must be auto, on or off, got '{setting}'")
    return COMPILE_AUTO[device_type] if value == "auto" else value == "on"
