"""The engine's static shapes (training/budgets.py): every sentence of every step lands, whole and in order, in a
batch of one of a few fixed shapes; the data order is a fresh permutation per epoch; the budgets pad least."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modernbert_glue.training.budgets import (
    MAX_SHAPES,
    choose_budgets,
    eval_plan,
    plan_run,
    rows_needed,
    static_batch,
    total_steps,
)


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(1, 600), min_size=1, max_size=90), batch_size=st.integers(1, 24),
       epochs=st.sampled_from([0.5, 1.0, 1.7, 2.0]), seed=st.integers(0, 3))
def test_no_sentence_is_dropped_or_truncated(lengths, batch_size, epochs, seed):
    plan = plan_run(lengths, batch_size, epochs, seed)
    rng = np.random.default_rng(seed)
    ids = [rng.integers(5, 1000, size=n).tolist() for n in lengths]
    labels = [i % 2 for i in range(len(lengths))]
    assert plan.width % 256 == 0 and plan.width >= max(lengths)
    assert len(plan.shapes) <= MAX_SHAPES and len(plan.batches) == plan.total_steps
    for indices, rows in zip(plan.batches, plan.rows):
        batch = static_batch(ids, labels, indices, rows, plan.width, batch_size, pad_id=0)
        assert batch.input_ids.shape == (rows, plan.width) and batch.num_sentences == batch_size
        flat = batch.input_ids.flatten()
        for k, i in enumerate(indices):  # each sentence whole, at its start, with its label
            start = int(batch.starts[k])
            assert flat[start : start + len(ids[i])].tolist() == ids[i]
            assert int(batch.lengths[k]) == len(ids[i]) and int(batch.labels[k]) == labels[i]
        assert (batch.labels[len(indices):] == -100).all()  # empty slots: ignored by the loss
        assert int((batch.segment_ids >= 0).sum()) == sum(len(ids[i]) for i in indices)


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 300), min_size=1, max_size=60), batch_size=st.integers(1, 16))
def test_each_epoch_is_a_permutation_and_fractional_epochs_stop_mid_epoch(lengths, batch_size):
    per_epoch, total = total_steps(len(lengths), batch_size, 1.5)
    assert per_epoch == math.ceil(len(lengths) / batch_size) and total == math.ceil(1.5 * per_epoch)
    plan = plan_run(lengths, batch_size, 1.5, seed=7)
    first = np.concatenate(plan.batches[:per_epoch])
    assert sorted(first.tolist()) == list(range(len(lengths)))
    assert plan_run(lengths, batch_size, 1.5, seed=7).batches[-1].tolist() == plan.batches[-1].tolist()
    assert plan_run(lengths, batch_size, 3.0, seed=7, max_steps=2).total_steps == 2


def test_budgets_pad_least_and_use_no_shape_that_saves_nothing():
    rng = np.random.default_rng(0)
    for _ in range(200):
        needs = rng.integers(1, 9, size=rng.integers(1, 30)).tolist()
        chosen = choose_budgets(needs, max_shapes=3)
        assert max(needs) in chosen and len(chosen) <= 3

        def padding(budgets):
            return sum(min(b for b in budgets if b >= n) - n for n in needs)

        best = min(padding([*c, max(needs)]) for k in range(3) for c in itertools.combinations(sorted(set(needs)), k))
        assert padding(chosen) <= best + 0.01 * (sum(needs) + best) + 1e-9
    # SST-2's paper run (batch 64, rows of 256): 4 rows for most steps, 5 for a quarter, 3 for 0.7%: the
    # third shape would save 0.2% of the rows, less than it costs.
    assert choose_budgets([4] * 1615 + [5] * 474 + [3] * 15 + [2] * 2) == [4, 5]
    assert choose_budgets([3, 3, 5], multiple=2) == [4, 6]  # train.packed_token_budget: multiples of it


def test_rows_needed_is_what_pack_uses():
    lengths = [200, 100, 56, 256, 1, 255]
    assert rows_needed(lengths, 256) == 4  # [200] [100, 56] [256] [1, 255]
    with pytest.raises(ValueError, match="more than row_tokens"):
        rows_needed([300], 256)
    plan = eval_plan([300, 5, 40], batch_size=2)
    assert plan.width == 512 and [b.tolist() for b in plan.batches] == [[0, 1], [2]]
