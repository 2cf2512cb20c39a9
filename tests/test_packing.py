"""Correctness gate of the padding-free path: per-sentence logits, loss and gradients equal the padded model's."""

import random

import pytest
import torch

from modernbert_glue.models import build_classifier
from modernbert_glue import packing
from modernbert_glue.packing import PackedClassifier, block_masks, pack
from modernbert_glue.tasks import get_task

from .conftest import MODERNBERT

MODELS = {
    # 3 layers: global, sliding, sliding (global every 3rd); window 128 -> |i - j| <= 64
    "modernbert": (str(MODERNBERT), dict(num_hidden_layers=3, hidden_size=64, intermediate_size=128, num_attention_heads=2)),
    "bert": ("sentence-transformers/all-MiniLM-L6-v2", dict(num_hidden_layers=2)),
}
BATCHES = {
    "mixed_with_long": [5, 17, 300, 1, 40, 130],
    "one": [23],
    "one_long": [310],
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def model_and_tokenizer(request):
    name, overrides = MODELS[request.param]
    torch.manual_seed(0)
    model, tokenizer = build_classifier(name, get_task("sst2"), random_init=True, overrides=overrides)
    model.eval()  # dropout off: both paths must compute the same function
    return model, tokenizer


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("batch_name", sorted(BATCHES))
@pytest.mark.parametrize("row_tokens,fixed_rows", [(None, None), (320, None), (320, 4)])
def test_packed_equals_padded(model_and_tokenizer, batch_name, row_tokens, fixed_rows):
    model, tokenizer = model_and_tokenizer
    rng = random.Random(1)
    seqs = [[rng.randrange(1000, 5000) for _ in range(n)] for n in BATCHES[batch_name]]
    labels = torch.tensor([i % 2 for i in range(len(seqs))])

    model.zero_grad()
    padded = model(**tokenizer.pad({"input_ids": seqs}, return_tensors="pt"), labels=labels)
    padded.loss.backward()
    reference = _grads(model)

    model.zero_grad()
    batch = pack(seqs, labels, row_tokens=row_tokens, pad_id=tokenizer.pad_token_id, fixed_rows=fixed_rows)
    if fixed_rows:  # a static shape: empty padding rows must change nothing
        assert batch.input_ids.shape == (fixed_rows, row_tokens)
    packed = PackedClassifier(model)(batch)
    packed.loss.backward()
    grads = _grads(model)

    assert torch.allclose(packed.logits, padded.logits, atol=1e-4), (packed.logits - padded.logits).abs().max()
    assert abs(packed.loss.item() - padded.loss.item()) < 1e-4
    assert reference.keys() == grads.keys()
    worst = max((grads[n] - reference[n]).abs().max().item() for n in grads)
    assert worst < 1e-4, worst


def test_masks_confine_attention_and_window():
    batch = pack([[1] * 3, [2] * 200], row_tokens=None)
    masks = block_masks(batch, sliding_window=64)
    full, local = masks["full_attention"][0, 0], masks["sliding_attention"][0, 0]
    assert full[0, 2] and not full[2, 3] and full[3, 202]  # same sentence only
    assert local[3, 3 + 64] and not local[3, 3 + 65]  # window measured in the sentence's own positions
    assert batch.position_ids[0, 3].item() == 0 and batch.starts.tolist() == [0, 3]


def test_rows_respect_the_token_budget():
    batch = pack([[1] * 10, [2] * 10, [3] * 5, [4] * 12], row_tokens=20)
    assert batch.input_ids.shape == (2, 20)  # [10+10], [5+12+pad]
    assert batch.real_tokens == 37 and batch.num_sentences == 4
    with pytest.raises(ValueError, match="more than row_tokens"):
        pack([[1] * 30], row_tokens=20)


@pytest.mark.parametrize("input_path", ["packed", "padded", "dynamic"])
def test_train_on_each_input_path(small_sst2, tmp_path, input_path):
    import json

    from .conftest import TINY_ARGS, run_cli

    out = tmp_path / input_path
    code, stdout, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
                                   "--max-train-samples", "64", "--max-eval-samples", "32", "--epochs", "1",
                                   "--batch-size", "16", "--set", f"train.input_path={input_path}", "--output-dir", out)
    assert code == 0, stderr[-2000:]
    metrics = json.loads(stdout)
    assert metrics["input_path"] == input_path and metrics["steps"] == 4
    assert (out / "model/model.safetensors").is_file() and (out / "model/config.json").is_file()


def test_unknown_input_path_is_refused(small_sst2, tmp_path):
    from .conftest import TINY_ARGS, run_cli

    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
                              "--set", "train.input_path=fast", "--output-dir", tmp_path / "o")
    assert code == 2 and "train.input_path must be one of" in stderr


def test_fixed_rows_give_one_shape_and_grow_by_whole_budgets():
    small = pack([[1] * 10, [2] * 5], row_tokens=20, fixed_rows=3)
    assert small.input_ids.shape == (3, 20) and small.segment_ids[1:].eq(-1).all()
    big = pack([[1] * 15] * 4, row_tokens=20, fixed_rows=3)  # needs 4 rows: the next multiple of 3
    assert big.input_ids.shape == (6, 20) and big.num_sentences == 4 and big.real_tokens == 60


def test_token_budget_must_be_whole_rows():
    from modernbert_glue.packing import budget_rows

    assert budget_rows(1024, 256) == 4 and budget_rows(0, 256) is None
    with pytest.raises(ValueError, match="multiple of the packed row"):
        budget_rows(1000, 256)


def test_packed_forward_is_one_graph_for_torch_compile(model_and_tokenizer):
    """No graph breaks on a static-shape batch: what lets torch.compile (and CUDA graphs) capture the step whole."""
    model, _ = model_and_tokenizer
    batch = pack([[5] * 10, [6] * 20, [7] * 7], torch.tensor([0, 1, 0]), row_tokens=32, fixed_rows=2)
    torch._dynamo.reset()
    explained = torch._dynamo.explain(PackedClassifier(model))(batch)
    assert explained.graph_break_count == 0, [str(r.reason)[:200] for r in explained.break_reasons]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_packed_pairs_equal_padded_with_segment_ids(kind):
    """Real RTE pairs: the packed path's segment ids (from the separator) give the padded model's logits, and
    for BERT they matter (segment embeddings)."""
    import numpy as np

    from modernbert_glue.data import encode_texts, read_examples, texts_of
    from modernbert_glue.inputs import pad_batch, sep_for, to_tensors

    from .conftest import SHARED

    name, overrides = MODELS[kind]
    torch.manual_seed(0)
    model, tokenizer = build_classifier(name, get_task("rte"), random_init=True, overrides=overrides)
    model.eval()
    pairs = texts_of(read_examples(SHARED / "data/rte/dev.tsv", get_task("rte")))[:12]
    seqs = encode_texts(tokenizer, pairs, 128)
    sep = sep_for(tokenizer)
    padded = model(**to_tensors(pad_batch([{"input_ids": s} for s in seqs], tokenizer.pad_token_id, sep_id=sep)))
    packed = PackedClassifier(model)(pack(seqs, row_tokens=256, pad_id=tokenizer.pad_token_id, sep_id=sep))
    assert torch.allclose(packed.logits, padded.logits, atol=1e-4), (packed.logits - padded.logits).abs().max()
    if kind == "bert":
        assert sep is not None
        unsegmented = PackedClassifier(model)(pack(seqs, row_tokens=256, pad_id=tokenizer.pad_token_id))
        assert not torch.allclose(unsegmented.logits, padded.logits, atol=1e-3)
    else:
        assert sep is None and not np.any([s.count(tokenizer.sep_token_id) != 2 for s in seqs])


@pytest.mark.parametrize("task,source", [("mnli", "rte"), ("stsb", "stsb")])
def test_packed_pairs_train_as_padded_for_three_classes_and_regression(task, source):
    """Real pairs with a three-class head (MNLI's labels) and a one-output regression head (STS-B's scores): the
    packed path gives the padded model's logits, loss and gradients."""
    from modernbert_glue.data import encode_texts, read_examples, texts_of
    from modernbert_glue.inputs import pad_batch, to_tensors

    from .conftest import SHARED

    name, overrides = MODELS["modernbert"]
    torch.manual_seed(0)
    model, tokenizer = build_classifier(name, get_task(task), random_init=True, overrides=overrides)
    examples = read_examples(SHARED / f"data/{source}/dev.tsv", get_task(source))
    seqs = encode_texts(tokenizer, texts_of(examples)[:10], 128)
    targets = [float(v) for v in examples["label"][:10]] if task == "stsb" else [i % 3 for i in range(10)]
    batch = to_tensors(pad_batch([{"input_ids": s} for s in seqs], tokenizer.pad_token_id))
    padded = model(**batch, labels=torch.tensor(targets))
    padded.loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    packed = PackedClassifier(model)(pack(seqs, targets, row_tokens=256, pad_id=tokenizer.pad_token_id))
    packed.loss.backward()
    assert packed.logits.shape == (10, 3 if task == "mnli" else 1)
    assert torch.allclose(packed.logits, padded.logits, atol=1e-4)
    assert abs(packed.loss.item() - padded.loss.item()) < 1e-4
    for n, p in model.named_parameters():
        if n in expected:
            assert torch.allclose(p.grad, expected[n], atol=1e-4, rtol=1e-3), n


def test_packed_regression_loss_is_the_models_mse():
    name, overrides = MODELS["modernbert"]
    torch.manual_seed(0)
    model, tokenizer = build_classifier(name, get_task("stsb"), random_init=True, overrides=overrides)
    model.eval()
    seqs = [[1000 + i for i in range(n)] for n in (5, 17, 40)]
    targets = [0.5, 3.25, 4.75]
    padded = model(**tokenizer.pad({"input_ids": seqs}, return_tensors="pt"), labels=torch.tensor(targets))
    packed = PackedClassifier(model)(pack(seqs, targets, pad_id=tokenizer.pad_token_id))
    assert packed.logits.shape == (3, 1)
    assert abs(packed.loss.item() - padded.loss.item()) < 1e-4


def test_a_batch_copies_into_static_tensors_of_its_shape_only():
    """What a captured step's replay does with each batch (training/capture.py): copy in place, optional fields
    (ModernBERT has no token_type_ids) left None, and a wrong shape or a missing field refused, not broadcast."""
    single = pack([[5, 6, 7], [8, 9]], labels=[0, 1], row_tokens=8, fixed_rows=1)
    static = single.clone()
    assert static.token_type_ids is None and static.input_ids is not single.input_ids
    other = pack([[1, 2], [3, 4, 4]], labels=[1, 0], row_tokens=8, fixed_rows=1)
    kept = static.input_ids
    static.copy_(other)
    assert static.input_ids is kept and torch.equal(kept, other.input_ids) and torch.equal(static.labels, other.labels)
    with pytest.raises(ValueError, match="field input_ids has shape \\(2, 8\\), not \\(1, 8\\)"):
        static.copy_(pack([[1] * 6, [2] * 6], labels=[0, 1], row_tokens=8, fixed_rows=2))
    with pytest.raises(ValueError, match="field token_type_ids is None in only one"):
        static.copy_(pack([[1, 2], [3, 4, 4]], labels=[1, 0], row_tokens=8, fixed_rows=1, sep_id=4))


def test_batches_move_to_the_device_whole_through_one_buffer_per_dtype():
    """batches_to: every field of every batch arrives equal, with its shape and dtype, None fields stay None, and
    the tensors share one buffer per dtype (one copy each)."""
    rng = random.Random(0)
    batches = [pack([[rng.randrange(5, 90) for _ in range(rng.randrange(1, 12))] for _ in range(n)], labels=[1] * n,
                    row_tokens=16) for n in (3, 5, 2)]
    moved = packing.batches_to(batches, "cpu")
    for before, after in zip(batches, moved):
        for a, b in zip(before.tensors(), after.tensors()):
            assert (a is None) == (b is None)
            if a is not None:
                assert b.shape == a.shape and b.dtype == a.dtype and torch.equal(a, b)
    ids = [b.input_ids for b in moved]
    assert len({t.untyped_storage().data_ptr() for t in ids}) == 1
