"""The engine's step (training/step.py) against the HF Trainer's: the same parameter groups, warmup and schedule,
and on one batch the same loss, gradients and updated weights (fp32, within 1e-5 / 1e-6), for ModernBERT and
BERT, with the engine's batch padded to a larger static shape (extra rows, empty sentence slots)."""

import copy
import math

import pytest
import torch

from modernbert_glue.config import load_config
from modernbert_glue.inputs import Collator
from modernbert_glue.models import build_classifier
from modernbert_glue.packing import PackedClassifier
from modernbert_glue.tasks import get_task
from modernbert_glue.training.budgets import rows_needed, static_batch
from modernbert_glue.training.capture import WarmupSnapshot
from modernbert_glue.training.step import TrainStep, build_optimizer, compile_layers, encoder_layers, warmup_steps

from ..conftest import MODERNBERT

SMALL = dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2)
NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)  # ModernBERT's are 0 already
MODELS = {"modernbert": (str(MODERNBERT), SMALL),
          "bert": ("sentence-transformers/all-MiniLM-L6-v2", {**SMALL, **NO_DROPOUT})}
LENGTHS = [5, 17, 60, 1, 40, 130, 9, 33]


def _setup(kind, dropout=False, layers=2, **train):
    name, overrides = MODELS[kind]
    overrides = {**overrides, "num_hidden_layers": layers}
    if dropout:
        overrides = {**overrides, "hidden_dropout_prob": 0.1}
    torch.manual_seed(0)
    model, tokenizer = build_classifier(name, get_task("sst2"), random_init=True, overrides=overrides)
    cfg = load_config("paper", {"train.warmup_ratio": 0.0, "train.bf16": "off", **{f"train.{k}": v for k, v in
                                                                                 train.items()}})
    gen = torch.Generator().manual_seed(1)
    seqs = [torch.randint(1000, 5000, (n,), generator=gen).tolist() for n in LENGTHS]
    labels = [i % 2 for i in range(len(seqs))]
    return model, tokenizer, cfg, seqs, labels


def _step_on_a_copy(model, cfg, bf16=False):
    """A copy of `model` and the engine's step on it (CPU)."""
    m = copy.deepcopy(model)
    optimizer, _ = build_optimizer(m, cfg.train, 10, torch.device("cpu"))
    return m, TrainStep(PackedClassifier(m), optimizer, cfg.train, bf16=bf16, device=torch.device("cpu"))


def _trainer(model, tokenizer, cfg, tmp_path, n):
    from transformers import Trainer

    from modernbert_glue.training.trainer import optimizer_with_groups

    from modernbert_glue.training.trainer import training_arguments

    from modernbert_glue.tasks import get_task

    args = training_arguments(cfg, tmp_path, n, "packed", get_task("sst2"))
    collator = Collator("packed", tokenizer.pad_token_id, cfg.data.max_length)
    packed = PackedClassifier(model)
    trainer = Trainer(model=packed, args=args, data_collator=collator,
                      eval_dataset=[{"input_ids": [1], "labels": 0}],  # evaluation is configured, not run
                      optimizer_cls_and_kwargs=optimizer_with_groups(args, packed, cfg.train))
    trainer.create_optimizer_and_scheduler(num_training_steps=10)
    trainer.current_gradient_accumulation_steps = 1  # set by the Trainer's own loop, which is not run here
    return trainer, collator


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_parameter_groups_and_schedule_are_the_trainers(kind, tmp_path):
    model, tokenizer, cfg, _, _ = _setup(kind, warmup_ratio=0.06, decay_norms_and_biases=False)  # the Trainer's rule
    trainer, _ = _trainer(model, tokenizer, cfg, tmp_path, 64)
    ours, schedule = build_optimizer(model, cfg.train, 10, torch.device("cpu"))
    theirs = trainer.optimizer
    assert [{id(p) for p in g["params"]} for g in ours.param_groups] == \
        [{id(p) for p in g["params"]} for g in theirs.param_groups]
    for a, b in zip(ours.param_groups, theirs.param_groups):
        assert (a["weight_decay"], a["betas"], a["eps"], a["fused"]) == (b["weight_decay"], b["betas"], b["eps"],
                                                                          b["fused"])
    assert ours.param_groups[1]["params"], "biases and norms: no decay"
    for total in (10, 17, 2106):
        assert warmup_steps(0.06, total) == trainer.args.get_warmup_steps(total) == math.ceil(0.06 * total)
    assert schedule.lr_lambdas[0](3) == trainer.lr_scheduler.lr_lambdas[0](3)


def _engine_schedules():
    from transformers import SchedulerType

    from modernbert_glue.training.dispatch import _schedule_works
    return [kind.value for kind in SchedulerType if _schedule_works(kind.value)]


@pytest.mark.parametrize("name", _engine_schedules())
def test_the_engines_tensor_rates_follow_every_schedule_as_a_float_optimizer_does(name):
    from transformers import get_scheduler

    from modernbert_glue.config import TrainConfig

    t = TrainConfig(lr=8e-5, lr_scheduler=name, warmup_ratio=0.1)  # 10 steps: a 1-step warmup, then decay
    model = torch.nn.Linear(2, 2)
    ours, schedule = build_optimizer(model, t, 10, torch.device("cpu"))
    plain = torch.optim.SGD(model.parameters(), lr=t.lr)
    theirs = get_scheduler(name, plain, num_warmup_steps=warmup_steps(t.warmup_ratio, 10), num_training_steps=10)
    for _ in range(10):
        for group, reference in zip(ours.param_groups, plain.param_groups * 2):
            assert float(group["lr"]) == pytest.approx(reference["lr"], rel=1e-6, abs=1e-12)
        ours.step()
        schedule.step()
        plain.step()
        theirs.step()


def test_a_run_shorter_than_its_warmup_is_told_so():
    from modernbert_glue.config import TrainConfig
    from modernbert_glue.training.step import warmup_warning

    def warning(total, **settings):
        t = TrainConfig(lr=8e-5, **settings)
        return warmup_warning(build_optimizer(torch.nn.Linear(2, 2), t, total, torch.device("cpu"))[1], t, total)

    assert "1 step(s) are all warmup at a learning rate of 0: nothing is trained" in warning(1, warmup_ratio=0.06)
    assert warning(2, warmup_ratio=0.06) is None  # one warmup step, then train.lr
    assert "the run's 3 steps all fall within warmup: the learning rate reaches 4e-05, not train.lr 8e-05" in warning(
        3, warmup_ratio=4)  # steps 0, 1, 2 of a 4-step warmup: 2/4 of the peak at most
    assert warning(1, warmup_ratio=0.06, lr_scheduler="constant") is None  # no warmup in that schedule
    assert warning(1, warmup_ratio=0.0) is None


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_classifier_lr_scale_gives_the_classification_layer_its_own_rate_in_both_loops(kind, tmp_path):
    model, tokenizer, cfg, _, _ = _setup(kind, warmup_ratio=0.2, classifier_lr_scale=10.0, decay_norms_and_biases=False)
    trainer, _ = _trainer(model, tokenizer, cfg, tmp_path, 64)
    ours, schedule = build_optimizer(model, cfg.train, 10, torch.device("cpu"))
    names = {id(p): n for n, p in model.named_parameters()}
    for optimizer in (ours, trainer.optimizer):
        groups = optimizer.param_groups
        assert len(groups) == 4 and all(g["params"] for g in groups)
        head = [names[id(p)] for g in groups[2:] for p in g["params"]]
        assert sorted(head) == ["classifier.bias", "classifier.weight"]
        assert not any("classifier" in names[id(p)] for g in groups[:2] for p in g["params"])
        assert [g["weight_decay"] for g in groups] == [cfg.train.weight_decay, 0.0] * 2
    for _ in range(3):  # past the warmup: every group at its own peak times the schedule's same factor
        ours.step()
        schedule.step()
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    for optimizer in (ours, trainer.optimizer):
        rates = [float(g["lr"]) for g in optimizer.param_groups]
        factor = schedule.lr_lambdas[0](3)
        assert 0 < factor < 1
        assert rates[0] == pytest.approx(cfg.train.lr * factor, rel=1e-6)  # float32 rates in the engine
        assert rates[2] == pytest.approx(10 * cfg.train.lr * factor, rel=1e-6)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_decay_norms_and_biases_decays_every_parameter_in_both_loops(kind, tmp_path):
    model, tokenizer, cfg, _, _ = _setup(kind, decay_norms_and_biases=True)
    trainer, _ = _trainer(model, tokenizer, cfg, tmp_path, 64)
    ours, _ = build_optimizer(model, cfg.train, 10, torch.device("cpu"))
    every = {id(p) for p in model.parameters() if p.requires_grad}
    for optimizer in (ours, trainer.optimizer):
        decayed = {id(p) for g in optimizer.param_groups if g["weight_decay"] == cfg.train.weight_decay
                   for p in g["params"]}
        assert decayed == every and not any(g["params"] for g in optimizer.param_groups if g["weight_decay"] == 0)


def test_classifier_lr_scale_refuses_a_model_without_a_classifier():
    from modernbert_glue.config import TrainConfig
    from modernbert_glue.errors import UserError
    from modernbert_glue.training.step import parameter_groups

    with pytest.raises(UserError, match="no trainable `classifier`"):
        parameter_groups(torch.nn.Linear(2, 2), TrainConfig(classifier_lr_scale=5.0))


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_eager_step_equals_the_trainers_step(kind, smoothing, tmp_path):
    model, tokenizer, cfg, seqs, labels = _setup(kind, label_smoothing=smoothing)
    theirs_model = copy.deepcopy(model)
    trainer, collator = _trainer(theirs_model, tokenizer, cfg, tmp_path, len(seqs))
    theirs_loss = trainer.training_step(trainer.model, collator(
        [{"input_ids": s, "labels": y} for s, y in zip(seqs, labels)]))
    theirs_norm = torch.nn.utils.clip_grad_norm_(theirs_model.parameters(), cfg.train.max_grad_norm)
    theirs_grads = {n: p.grad.clone() for n, p in theirs_model.named_parameters()}
    trainer.optimizer.step()

    optimizer, _ = build_optimizer(model, cfg.train, 10, torch.device("cpu"))
    step = TrainStep(PackedClassifier(model), optimizer, cfg.train, bf16=False, device=torch.device("cpu"))
    rows = rows_needed([len(s) for s in seqs], 256) + 1  # an empty row and three empty slots: no effect
    batch = static_batch(seqs, labels, range(len(seqs)), rows, 256, len(seqs) + 3, tokenizer.pad_token_id)
    loss, norm = step(batch)  # forward, loss, backward, clipping, AdamW
    assert float(loss) == pytest.approx(float(theirs_loss), abs=1e-5)
    assert float(norm) == pytest.approx(float(theirs_norm), rel=1e-5)
    worst = max(float((p.grad - theirs_grads[n]).abs().max()) for n, p in model.named_parameters())
    assert worst <= 1e-5, worst
    moved = max(float((p - q).detach().abs().max()) for p, q in zip(model.parameters(), theirs_model.parameters()))
    assert moved <= 1e-6, moved


def test_warmup_steps_before_capture_leave_no_trace():
    """capture.py warms the step up on real batches before capturing it, then restores the weights, the optimizer
    state (created by the warm-up: zeros, what a first step starts from) and the RNG in place: the run that
    follows is the run without warm-up (checked here on CPU, eagerly; the capture itself needs a GPU)."""
    model, tokenizer, cfg, seqs, labels = _setup("bert", dropout=True)  # dropout: the RNG matters
    batch = static_batch(seqs, labels, range(len(seqs)), 2, 256, len(seqs), tokenizer.pad_token_id)
    results = []
    for warm in (False, True):
        m, step = _step_on_a_copy(model, cfg)
        torch.manual_seed(5)
        if warm:
            snapshot = WarmupSnapshot(step)
            step(batch)
            step(batch)
            snapshot.restore(step)
        losses = [float(step(batch)[0]) for _ in range(2)]
        results.append((losses, [p.detach().clone() for p in m.parameters()]))
    (plain, plain_weights), (warmed, warmed_weights) = results
    assert plain == warmed
    assert all(torch.equal(a, b) for a, b in zip(plain_weights, warmed_weights))


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_each_kind_of_layer_compiles_once_for_every_step_shape(kind):
    """compile_layers: one dynamo graph serves every layer of a kind and every rows count of a run (a GPU
    compile costs seconds per graph); ModernBERT's first layer, a kind of its own, stays eager. The eager
    backend: dynamo's graphs without inductor's compile time."""
    from torch._dynamo.utils import counters

    model, tokenizer, cfg, seqs, labels = _setup(kind, layers=4)
    m, step = _step_on_a_copy(model, cfg)
    count = compile_layers(step.model, backend="eager")
    compiled = [hasattr(layer.forward, "_torchdynamo_orig_callable") for layer in encoder_layers(step.model)]
    assert compiled == ([False, True, True, True] if kind == "modernbert" else [True] * 4)
    assert count == sum(compiled)  # the engine's "compile" says whether any layer was
    torch._dynamo.reset()
    counters.clear()
    try:
        losses = [float(step(static_batch(seqs, labels, range(len(seqs)), rows, 256, len(seqs),
                                          tokenizer.pad_token_id))[0]) for rows in (2, 3, 4, 2)]
        assert counters["stats"]["unique_graphs"] == 1 and not counters["recompiles"], dict(counters)
    finally:
        torch._dynamo.reset()
    assert all(math.isfinite(x) for x in losses)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("bf16", [False, True])
def test_compiled_step_equals_the_eager_step(kind, bf16):
    """torch.compile of the encoder layers (inductor, CPU) inside the whole step. fp32: loss and gradients within
    1e-5. bf16 (8-bit mantissa, ~4e-3 relative per rounding; fused kernels round at other places): loss within
    2e-2 and every gradient within 5% of the largest gradient of its tensor. Three layers: ModernBERT's first is
    left eager (compile_layers), so two layers of one kind are compiled."""
    model, tokenizer, cfg, seqs, labels = _setup(kind, layers=3)
    batches = [static_batch(seqs, labels, range(len(seqs)), rows, 256, len(seqs), tokenizer.pad_token_id)
               for rows in (2, 3)]  # two shapes, the second through the graph the first compiled (rows dynamic)
    results = {}
    for compiled in (False, True):
        m, step = _step_on_a_copy(model, cfg, bf16)
        if compiled:
            compile_layers(step.model)
        results[compiled] = []
        for batch in batches:
            loss, _ = step(batch)
            results[compiled].append((float(loss), {n: p.grad.clone() for n, p in m.named_parameters()}))
    for (loss_e, grads_e), (loss_c, grads_c) in zip(results[False], results[True]):
        if not bf16:
            assert loss_c == pytest.approx(loss_e, abs=1e-5)
            assert max(float((grads_c[n] - g).abs().max()) for n, g in grads_e.items()) <= 1e-5
            continue
        assert loss_c == pytest.approx(loss_e, abs=2e-2)
        for n, g in grads_e.items():
            assert float((grads_c[n] - g).abs().max()) <= 0.05 * float(g.abs().max()) + 1e-6, n
