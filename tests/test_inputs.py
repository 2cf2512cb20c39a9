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


@pytest.mark.parametrize("setting, model_type, use, device, expected", [
    ("auto", "modernbert", "train", "cpu", "packed"),
    ("auto", "bert", "train", "cpu", "grouped"),
    ("auto", "modernbert", "infer", "cpu", "grouped"),
    ("auto", "modernbert", "train", "cuda", "padded"),
    ("auto", "distilbert", "train", "cpu", "grouped"),
    ("padded-128", "bert", "bench", "cpu", "padded"),
    ("dynamic", "distilbert", "infer", "cpu", "dynamic"),
])
def test_one_auto_rule_per_use_and_device(setting, model_type, use, device, expected):
    from modernbert_glue.inputs import resolve_input_path

    assert resolve_input_path(setting, model_type, use, device) == expected


def test_bad_paths_are_refused_in_one_line():
    from modernbert_glue.errors import UserError
    from modernbert_glue.inputs import resolve_input_path

    with pytest.raises(UserError, match="--input-path must be one of auto, padded, dynamic, grouped, packed, got 'x'"):
        resolve_input_path("x", "bert", "infer", "cpu")
    with pytest.raises(UserError, match="input path 'packed' supports modernbert, bert models, not 'distilbert'"):
        resolve_input_path("packed", "distilbert", "train", "cpu")


def test_training_and_inference_collate_through_the_same_padding():
    """The Trainer's collator (tensors) and inference's collate (numpy) give the same padded batch."""
    from modernbert_glue.inputs import Collator, collate

    seqs = [[5, 6, 7], [8], [9, 10]]
    for path, width in (("dynamic", 3), ("padded", 6)):
        trained = Collator(path, pad_id=0, max_length=6)([{"input_ids": s, "labels": 1} for s in seqs])
        inferred = collate(path, seqs, 0, 6, tensors=False)
        assert trained["input_ids"].shape == (3, width)
        assert trained["input_ids"].tolist() == inferred["input_ids"].tolist()
        assert trained["attention_mask"].tolist() == inferred["attention_mask"].tolist()
        assert trained["labels"].tolist() == [1, 1, 1]
    # a pair [CLS]=1 a=5 [SEP]=2 b=6 [SEP]=2: segment ids after the first separator, padding 0
    pair = Collator("dynamic", 0, 6, sep_id=2)([{"input_ids": [1, 5, 2, 6, 2]}, {"input_ids": [1, 7, 2]}])
    assert pair["token_type_ids"].tolist() == [[0, 0, 0, 1, 1], [0, 0, 0, 0, 0]]
