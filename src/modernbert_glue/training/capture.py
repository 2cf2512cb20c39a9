"""CUDA graphs of the whole training step (step.py), one per static shape: every CUDA-graph call of the project
is in `capture_step`, and it is only called on CUDA.

A replay launches the step's ~2,000 kernels (forward, backward, clipping, AdamW) as one graph, which is what a
launch-bound step needs: on an H200 every eager path of ModernBERT-base ran at 1-2% of the GPU's matmul rate
(../shared/results/h200-2026-11-27). Capturing needs warm-up steps first (cuBLAS handles, the optimizer's
state, torch.compile's compilation); they run on the first batch of each shape before training, and every
state they touch (weights, optimizer moments and step counts, RNG) is put back afterwards, in place, so that
the run trains exactly as if they had not happened and the graphs keep pointing at the live tensors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from ..packing import PackedBatch
from .step import TrainStep

log = logging.getLogger(__name__)

WARMUP_STEPS = 2  # one to compile/initialise, one to run the steady path, as PyTorch's capture recipe does


@dataclass
class CapturedStep:
    graph: torch.cuda.CUDAGraph
    inputs: PackedBatch  # static tensors the graph reads: each replay copies the step's batch into them
    loss: torch.Tensor  # static outputs, overwritten by each replay
    grad_norm: torch.Tensor

    def replay(self, batch: PackedBatch) -> tuple[torch.Tensor, torch.Tensor]:
        self.inputs.copy_(batch)
        self.graph.replay()
        return self.loss, self.grad_norm


def supported(device: torch.device) -> bool:
    """Whether steps on `device` are captured: CUDA graphs need a CUDA device (tests/training/test_capture.py
    replaces this, and torch.cuda's graph API, to run the engine's capture flow on a CPU)."""
    return device.type == "cuda"


def capture_step(step: TrainStep, examples: dict[int, PackedBatch], compiled: bool) -> dict[int, str]:
    """Capture `step` once per shape (rows -> an example batch of that shape, on the device) into
    `step.graphs`; returns rows -> "captured", or how that shape runs instead and why. Once a compiled capture
    fails, it is captured again without torch.compile, and the rest of the run (other shapes, eager steps) goes
    without it: a compiler failing on one shape would fail again on the next, after compiling as long again.
    A shape that cannot be captured at all runs eagerly."""
    if not supported(step.device):
        raise RuntimeError("capture_step needs a CUDA device")
    saved = WarmupSnapshot(step)
    report = {}
    for rows, example in sorted(examples.items()):
        static = example.clone()  # ModernBERT's batches have no token_type_ids (None): clone keeps them None
        try:
            step.graphs[rows] = _capture(step, static)
            report[rows] = f"captured without torch.compile ({step.uncompiled})" if step.uncompiled else "captured"
            continue
        except Exception as exc:  # noqa: BLE001 - a failed capture must leave a working (slower) step
            reason = _why(exc)
            log.warning("capturing the %d-row step failed", rows, exc_info=True)
        if compiled and step.uncompiled is None:
            step.uncompiled = reason
            try:
                step.graphs[rows] = _capture(step, static)
                report[rows] = f"captured without torch.compile ({reason})"
                continue
            except Exception as exc:  # noqa: BLE001
                reason += f"; without torch.compile: {_why(exc)}"
                log.warning("capturing the %d-row step without torch.compile failed", rows, exc_info=True)
        report[rows] = f"eager ({reason})"
    for rows, outcome in report.items():
        log.info("step shape %d rows: %s", rows, outcome)
    torch.cuda.synchronize()  # every warm-up's and failed capture's update lands before the weights are put back
    saved.restore(step)
    torch.cuda.synchronize()
    return report


def _capture(step: TrainStep, static: PackedBatch) -> CapturedStep:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.stream(side):
            for _ in range(WARMUP_STEPS):
                step.optimizer.zero_grad(set_to_none=True)
                step.body(static)
    finally:  # a failed warm-up's queued work must finish before a retry or the restore of the weights
        torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    # Gradients set to None: backward then allocates them inside the graph (its own memory pool) and each replay
    # overwrites them rather than adding to the last step's.
    step.optimizer.zero_grad(set_to_none=True)
    before = torch.cuda.current_stream()
    try:
        with torch.cuda.graph(graph):
            loss, norm = step.body(static)
    finally:  # when ending the capture raises, the graph's context skips putting the stream back
        torch.cuda.set_stream(before)
    return CapturedStep(graph, static, loss, norm)


def _why(exc: BaseException) -> str:
    """An exception and the ones it was raised while handling, the first first: when a step fails inside a
    capture, ending the capture raises again ("... a previous error during capture") and hides the cause."""
    chain = []
    while exc is not None and len(chain) < 3:
        chain.append(f"{type(exc).__name__}: {str(exc).strip()[:300]}")
        exc = exc.__context__
    return ", then ".join(reversed(chain))


class WarmupSnapshot:
    """The step's state before the warm-up steps: weights, optimizer state, RNG; `restore` puts it back in
    place (tests/training/test_step.py checks that a run after warm-up and restore trains as one without)."""

    def __init__(self, step: TrainStep):
        self.params = [p.detach().clone() for p in step.params]
        self.state = {p: {k: v.clone() for k, v in s.items() if torch.is_tensor(v)}
                      for p, s in step.optimizer.state.items()}
        self.rng = torch.get_rng_state(), torch.cuda.get_rng_state() if step.device.type == "cuda" else None

    @torch.no_grad()
    def restore(self, step: TrainStep) -> None:
        torch._foreach_copy_([p.detach() for p in step.params], self.params)
        for p, state in step.optimizer.state.items():
            saved = self.state.get(p)
            for key, value in state.items():
                if not torch.is_tensor(value):
                    continue
                if saved:
                    value.copy_(saved[key])
                else:  # a state the warm-up created: all zeros is what a first step starts from
                    value.zero_()
        torch.set_rng_state(self.rng[0])
        if self.rng[1] is not None:
            torch.cuda.set_rng_state(self.rng[1])
