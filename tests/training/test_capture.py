"""capture.py's flow on a CPU: warm-up, capture per shape, restore, replay by shape, and the fallbacks, with
torch.cuda's stream and graph API replaced by fakes that keep a CUDA graph's contract (the step's static
inputs are read at replay, its static outputs overwritten; the captured backward writes gradients instead of
adding to them). The capture itself needs a GPU (benchmarks/gpu_engine.py); everything around it is checked
here, for ModernBERT (no token_type_ids) and BERT (with them)."""

import contextlib
import copy
import json
import math

import pytest
import torch

from modernbert_glue.packing import PackedClassifier
from modernbert_glue.segments import sep_for
from modernbert_glue.training.budgets import static_batch
from modernbert_glue.training import capture
from modernbert_glue.training.capture import capture_step
from modernbert_glue.training.step import TrainStep, build_optimizer, compile_layers

from .test_step import MODELS, _setup

ORIGINAL_BODY = TrainStep.body


class FakeGraph:
    """Records the step it captures; a replay runs that step again on the same static inputs and writes the
    results into the outputs the capture returned."""

    fail_rows: set = set()  # shapes whose capture raises, as a real capture can

    def __init__(self):
        self.step = self.inputs = self.outputs = None
        self.replays = 0

    def replay(self):
        self.replays += 1
        self.step.optimizer.zero_grad(set_to_none=True)
        loss, norm = ORIGINAL_BODY(self.step, self.inputs)
        self.outputs[0].copy_(loss)
        self.outputs[1].copy_(norm)


class FakeCuda:
    def __init__(self, monkeypatch):
        self.recording: FakeGraph | None = None
        self.graphs: list[FakeGraph] = []
        stream = type("Stream", (), {"wait_stream": lambda self, other: None})
        self.current = self.default = stream()
        for name, value in {
            "Stream": stream, "current_stream": lambda: self.current, "set_stream": self.set_stream,
            "stream": lambda s: contextlib.nullcontext(),
            "synchronize": lambda: None, "CUDAGraph": self.new_graph, "graph": self.capture,
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)
        monkeypatch.setattr(capture, "supported", lambda device: True)  # the CPU's steps are captured too
        fake = self

        def body(step, batch):
            result = ORIGINAL_BODY(step, batch)
            if fake.recording is not None:
                fake.recording.step, fake.recording.inputs, fake.recording.outputs = step, batch, result
            return result

        monkeypatch.setattr(TrainStep, "body", body)

    def set_stream(self, stream):
        self.current = stream

    def new_graph(self):
        self.graphs.append(FakeGraph())
        return self.graphs[-1]

    @contextlib.contextmanager
    def capture(self, graph):
        """As torch.cuda.graph: the capture stream is current inside; a shape in `fail_rows` fails in its step
        and then again when the capture ends, which leaves the capture stream current (as torch's context does
        when capture_end raises)."""
        self.recording, self.current = graph, type(self.current)()
        yield
        self.recording = None
        rows = graph.inputs.input_ids.shape[0]
        if rows in FakeGraph.fail_rows:
            try:
                raise RuntimeError(f"operation not permitted when stream is capturing ({rows} rows)")
            except RuntimeError:
                raise RuntimeError("operation failed due to a previous error during capture")  # noqa: B904
        self.current = self.default


@pytest.fixture
def fake_cuda(monkeypatch):
    """Installs the fakes when called: after the model is built (building it consults torch.cuda)."""
    FakeGraph.fail_rows = set()
    return lambda: FakeCuda(monkeypatch)


def _batches(kind):
    model, tokenizer, cfg, seqs, labels = _setup(kind)
    sep = sep_for(tokenizer)
    small, large, odd = (static_batch(seqs, labels, range(n), rows, 256, len(seqs), tokenizer.pad_token_id, sep)
                         for n, rows in ((4, 1), (8, 2), (8, 3)))
    return model, cfg, small, large, odd


def _step(model, cfg):
    m = copy.deepcopy(model)
    optimizer, _ = build_optimizer(m, cfg.train, 10, torch.device("cpu"))
    return m, TrainStep(PackedClassifier(m), optimizer, cfg.train, bf16=False, device=torch.device("cpu"))


def _run(model, cfg, batches, examples=None):
    """Steps over `batches` on a copy of `model`, captured first when `examples` (rows -> example batch) are
    given: (losses, final weights, capture report, step)."""
    m, step = _step(model, cfg)
    report = capture_step(step, examples, compiled=False) if examples else None
    losses = [float(step(b)[0]) for b in batches]
    return losses, [p.detach().clone() for p in m.parameters()], report, step


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_captured_steps_replay_as_the_eager_steps(kind, fake_cuda):
    model, cfg, small, large, odd = _batches(kind)
    fake = fake_cuda()
    order = [large, small, large, odd, small]  # `odd` (3 rows) has no graph: it runs eagerly between replays
    eager_losses, eager_weights, _, _ = _run(model, cfg, order)
    losses, weights, report, step = _run(model, cfg, order, {1: small, 2: large})
    assert report == {1: "captured", 2: "captured"}
    assert [g.replays for g in fake.graphs] == [2, 2]  # rows 1, then 2: each shape's batches replay it
    static = step.graphs[1].inputs
    assert (static.token_type_ids is None) == (kind == "modernbert")  # None stays None, through clone and copy
    assert static.input_ids is not small.input_ids  # the graph reads its own copy
    assert losses == pytest.approx(eager_losses, abs=1e-6)  # the warm-up left no trace, replays train as eager
    assert max(float((a - b).abs().max()) for a, b in zip(weights, eager_weights)) <= 1e-6


def test_a_shape_that_cannot_be_captured_runs_eagerly_and_says_why(fake_cuda):
    model, cfg, small, large, _ = _batches("modernbert")
    fake = fake_cuda()
    FakeGraph.fail_rows = {2}
    eager_losses, _, _, _ = _run(model, cfg, [large, small, large])
    losses, _, report, step = _run(model, cfg, [large, small, large], {1: small, 2: large})
    assert report[1] == "captured" and set(step.graphs) == {1}
    assert report[2] == ("eager (RuntimeError: operation not permitted when stream is capturing (2 rows), then "
                         "RuntimeError: operation failed due to a previous error during capture)")  # the cause first
    assert fake.current is fake.default  # the capture stream is not left current
    assert losses == pytest.approx(eager_losses, abs=1e-6)


def test_a_failed_compiled_capture_is_tried_again_without_compile(fake_cuda):
    model, cfg, small, large, _ = _batches("bert")
    fake_cuda()
    FakeGraph.fail_rows = {2}  # fails both times: the report names both reasons
    _, step = _step(model, cfg)
    report = capture_step(step, {2: large}, compiled=True)
    assert report[2].startswith("eager (RuntimeError") and "; without torch.compile: RuntimeError" in report[2]


def test_after_a_compiled_capture_fails_the_run_goes_on_without_torch_compile(fake_cuda):
    """A compiler that fails (as inductor can on a GPU) fails the first compiled capture; that shape is captured
    without torch.compile, the next shape goes straight to that, and an eager step does not call the compiler."""
    model, cfg, small, large, odd = _batches("bert")  # two layers of one kind: both compiled
    fake = fake_cuda()
    calls = []

    def failing_compiler(graph, example_inputs):
        calls.append(1)
        raise RuntimeError("the compiler crashed")

    m, step = _step(model, cfg)
    compile_layers(step.model, backend=failing_compiler)
    torch._dynamo.reset()
    try:
        report = capture_step(step, {1: small, 2: large}, compiled=True)
        assert report[1].startswith("captured without torch.compile (") and "the compiler crashed" in report[1]
        assert report[2] == report[1] and len(fake.graphs) == 2  # the failure came in the warm-up, before a graph
        compiles = len(calls)
        assert compiles >= 1 and step.uncompiled
        assert math.isfinite(float(step(odd)[0]))  # 3 rows: no graph, an eager step
        assert len(calls) == compiles
    finally:
        torch._dynamo.reset()


def test_capture_refuses_a_cpu_step():
    model, cfg, small, _, _ = _batches("modernbert")
    _, step = _step(model, cfg)
    with pytest.raises(RuntimeError, match="needs a CUDA device"):
        capture_step(step, {1: small}, compiled=False)


def _engine_run(small_sst2, out):
    """train_engine in this process on 96 real sentences, batch 16 (6 steps), the tiny ModernBERT."""
    from modernbert_glue.config import resolve_run_config
    from modernbert_glue.model_overrides import parse_overrides
    from modernbert_glue.training.engine import train_engine

    from ..conftest import MODERNBERT, TINY

    options = {"model.name": str(MODERNBERT), "model.random_init": True, "data.data_dir": str(small_sst2),
               "data.max_train_samples": 96, "data.max_eval_samples": 32, "train.epochs": 1,
               "train.batch_size": 16, "train.lr": 1e-3}
    cfg = resolve_run_config(None, options, ["train.engine=engine"], parse_overrides(TINY))
    metrics = train_engine(cfg, str(out))
    return metrics, json.loads((out / "log_history.json").read_text())["engine"]


def test_the_engine_captures_its_step_shapes_and_trains_as_it_does_eagerly(small_sst2, tmp_path, fake_cuda):
    """EngineRun.prepare captures one graph per step shape of its plan and the loop replays them: the same step
    losses and dev accuracy as the eager run, and the capture report in log_history.json."""
    _, eager = _engine_run(small_sst2, tmp_path / "eager")
    fake = fake_cuda()
    metrics, engine = _engine_run(small_sst2, tmp_path / "captured")
    shapes = engine["step_shapes"]
    assert engine["cuda_graphs"] == {rows: "captured" for rows in shapes}
    assert 0 <= engine["capture_seconds"] <= engine["prepare_seconds"]  # the capture flow ran inside preparation
    assert sorted(g.replays for g in fake.graphs) == sorted(shapes.values())  # every step was a replay
    assert engine["step_losses"] == pytest.approx(eager["step_losses"], abs=1e-5)
    assert metrics["steps"] == 6 and eager["cuda_graphs"] is None
