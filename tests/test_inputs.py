"""inputs.py: padding, length-sorted even batches, concurrency (behind `predict`, the server and training)."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from modernbert_glue.inputs import pad_batch, sorted_batches


@pytest.mark.parametrize("side, ids, mask", [
    ("right", [[5, 6, 7], [8, 0, 0]], [[1, 1, 1], [1, 0, 0]]),
    ("left", [[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]]),
])
def test_pad_batch_pads_on_the_tokenizers_side(side, ids, mask):
    got = pad_batch([{"input_ids": [5, 6, 7]}, {"input_ids": [8]}], 0, left=side == "left")
    got_ids, got_mask = got["input_ids"], got["attention_mask"]
    assert got_ids.tolist() == ids and got_mask.tolist() == mask and got_ids.dtype == np.int64
    wide = pad_batch([{"input_ids": [5]}], 0, width=4)["input_ids"]
    assert wide.tolist() == [[5, 0, 0, 0]]


def _lengths_model(seen):
    def run(seqs):
        seen.append([len(s) for s in seqs])
        return np.array([[len(s), 0.0] for s in seqs])

    return run


def test_sorted_batches_split_evenly_and_keep_input_order():
    encoded = [[1] * n for n in np.random.default_rng(0).integers(1, 50, size=72)]
    seen = []
    out = sorted_batches(encoded, 64, _lengths_model(seen), 2)
    assert [len(b) for b in seen] == [36, 36]  # not 64 + 8
    assert seen[0] == sorted(seen[0]) and max(seen[0]) <= min(seen[1])
    assert out[:, 0].tolist() == [len(e) for e in encoded]
    seen = []
    sorted_batches(encoded, 64, _lengths_model(seen), 2, sort=False)
    assert [n for b in seen for n in b] == [len(e) for e in encoded]


def test_sorted_batches_give_every_worker_a_share():
    encoded = [[1] * n for n in (3, 9, 4, 7, 1, 2, 8, 5)]
    seen = []
    with ThreadPoolExecutor(2) as pool:
        out = sorted_batches(encoded, 16, _lengths_model(seen), 2, pool=pool, workers=2)
    assert sorted(len(b) for b in seen) == [4, 4]  # 8 texts: two batches of 4, not one of 8
    assert out[:, 0].tolist() == [3, 9, 4, 7, 1, 2, 8, 5]
    assert sorted_batches([], 16, _lengths_model([]), 2).shape == (0, 2)
