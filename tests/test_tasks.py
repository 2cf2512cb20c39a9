"""Every GLUE task's reader on the real shared files, label parsing, your own data's columns and labels, and pair
tokenization with segment ids."""

import json

import numpy as np
import pytest

from modernbert_glue.config import DataConfig
from modernbert_glue.data import encode_texts, load_training_data, read_examples, texts_of
from modernbert_glue.errors import UserError
from modernbert_glue.inputs import pad_batch, sep_for, type_ids
from modernbert_glue.tasks import GLUE_TASKS, TASKS, get_task, task_for

from .conftest import SHARED

# Rows per file, from ../shared/README.md (data rows, header excluded).
ROWS = {
    ("cola", "train.tsv"): 8551, ("cola", "dev.tsv"): 1043, ("cola", "test.tsv"): 1063,
    ("mrpc", "train.tsv"): 3668, ("mrpc", "dev.tsv"): 408, ("mrpc", "test.tsv"): 1725,
    ("rte", "train.tsv"): 2490, ("rte", "dev.tsv"): 277, ("rte", "test.tsv"): 3000,
    ("stsb", "train.tsv"): 5749, ("stsb", "dev.tsv"): 1500, ("stsb", "test.tsv"): 1379,
    ("wnli", "train.tsv"): 635, ("wnli", "dev.tsv"): 71, ("wnli", "test.tsv"): 146,
    ("qnli", "dev.tsv"): 5463, ("qnli", "test.tsv"): 5463,
    ("sst2", "dev.tsv"): 872, ("sst2", "test.tsv"): 1821,
}


@pytest.mark.parametrize("task_name,file", sorted(ROWS))
def test_each_reader_reads_every_row_of_the_real_file(task_name, file):
    task = get_task(task_name)
    columns = read_examples(SHARED / "data" / task_name / file, task, require_label=False)
    assert len(columns["sentence"]) == ROWS[(task_name, file)]
    assert ("sentence2" in columns) == task.is_pair
    if file != "test.tsv":  # GLUE hides the test labels
        labels = columns["label"]
        assert len(labels) == len(columns["sentence"])
        if task.regression:
            assert all(isinstance(v, float) and 0.0 <= v <= 5.0 for v in labels)
        else:
            assert set(labels) == set(range(task.num_labels))  # every class occurs, nothing else
    else:
        assert "label" not in columns


def test_readers_map_each_layout_to_the_right_fields():
    cola = read_examples(SHARED / "data/cola/dev.tsv", get_task("cola"))  # no header, no final newline
    assert (cola["sentence"][0], cola["label"][0]) == ("The sailors rode the breeze clear of the rocks.", 1)
    mrpc = read_examples(SHARED / "data/mrpc/train.tsv", get_task("mrpc"))  # BOM, Quality, #1/#2 String
    assert mrpc["sentence"][0].startswith("Amrozi accused his brother") and mrpc["label"][:2] == [1, 0]
    assert mrpc["sentence2"][0].startswith("Referring to him as only")
    rte = read_examples(SHARED / "data/rte/train.tsv", get_task("rte"))  # string labels, Hub order
    assert rte["label"][0] == get_task("rte").label_names.index("not_entailment") == 1
    stsb = read_examples(SHARED / "data/stsb/train.tsv", get_task("stsb"))  # ten columns, score last
    assert (stsb["sentence"][0], stsb["sentence2"][0], stsb["label"][:2]) == (
        "A plane is taking off.", "An air plane is taking off.", [5.0, 3.8])
    qnli = read_examples(SHARED / "data/qnli/dev.tsv", get_task("qnli"))
    assert qnli["sentence"][0].startswith("What came into force") and qnli["label"][0] == 0


def test_the_registry_defines_each_glue_task_once():
    assert set(GLUE_TASKS) == {"cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"}
    assert TASKS["cola"].main_metric == "mcc" and TASKS["mrpc"].main_metric == "f1"
    assert TASKS["stsb"].regression and TASKS["stsb"].num_labels == 1
    assert TASKS["mnli"].num_labels == 3 and "dev_mismatched" in TASKS["mnli"].extra_eval
    assert all(TASKS[t].submission for t in (*GLUE_TASKS, "ax"))


def test_labels_parse_by_name_or_id_and_refuse_anything_else(tmp_path):
    path = tmp_path / "rte.tsv"
    path.write_text("sentence1\tsentence2\tlabel\na\tb\tentailment\nc\td\t1\n", encoding="utf-8")
    assert read_examples(path, get_task("rte"))["label"] == [0, 1]
    path.write_text("sentence1\tsentence2\tlabel\na\tb\tneutral\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"rte.tsv, line 2: label 'neutral' is not one of 0, 1, entailment, "
                                         r"not_entailment"):
        read_examples(path, get_task("rte"))
    path.write_text("sentence1\tsentence2\tscore\na\tb\thigh\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"line 2: label 'high' is not a number \(regression\)"):
        read_examples(path, get_task("stsb"))


def test_a_pair_task_names_its_missing_second_column(tmp_path):
    path = tmp_path / "rte.tsv"
    path.write_text("sentence1\tlabel\na\tentailment\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"missing column 'sentence2' \(rte classifies sentence pairs: expected "
                                        r"sentence1, sentence2; found: sentence1, label\)"):
        read_examples(path, get_task("rte"))


def _custom(tmp_path, rows, **options):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return load_training_data(DataConfig(task="custom", train_file=str(path), **options),
                              task_for(DataConfig(task="custom", **options)))


def test_own_data_string_labels_are_named_in_sorted_order(tmp_path):
    rows = [{"q": "a", "a": "b", "y": "yes"}, {"q": "c", "a": "d", "y": "no"}, {"q": "e", "a": "f", "y": "maybe"}]
    task, train = _custom(tmp_path, rows, text_columns=["q", "a"], label_column="y")
    assert task.label_names == ("maybe", "no", "yes") and task.metrics[0] == "accuracy" and "f1" not in task.metrics
    assert train["label"] == [2, 1, 0] and texts_of(train) == [("a", "b"), ("c", "d"), ("e", "f")]


def test_own_data_numeric_labels_sort_as_numbers_and_regression_keeps_values(tmp_path):
    rows = [{"text": "a", "stars": s} for s in (10, 2, 1, 2)]
    task, train = _custom(tmp_path, rows, text_columns=["text"], label_column="stars")
    assert task.label_names == ("1", "2", "10") and train["label"] == [2, 1, 0, 1]
    task, train = _custom(tmp_path, rows, text_columns=["text"], label_column="stars", regression=True)
    assert task.regression and task.main_metric == "pearson" and train["label"] == [10.0, 2.0, 1.0, 2.0]


def test_own_data_refuses_one_class_and_bad_column_options(tmp_path):
    with pytest.raises(UserError, match="every label is 'x'; a classifier needs two or more"):
        _custom(tmp_path, [{"sentence": "a", "label": "x"}] * 3)
    with pytest.raises(UserError, match="--text-columns takes one column or a pair, got 3"):
        task_for(DataConfig(task="custom", text_columns=["a", "b", "c"]))
    with pytest.raises(UserError, match="task rte classifies sentence pairs; --text-columns names 1 column"):
        task_for(DataConfig(task="rte", text_columns=["premise"]))
    with pytest.raises(UserError, match="--regression goes with --task custom"):
        task_for(DataConfig(task="rte", regression=True))
    # the model read its own answer (the label as its text), or one column as both texts of a pair
    for texts, label in ((["label"], None), (["q", "label"], "label"), (["q", "q"], None), (["verdict"], "verdict")):
        with pytest.raises(UserError, match="each column is one text or the label"):
            task_for(DataConfig(task="custom", text_columns=texts, label_column=label))


@pytest.fixture(scope="module")
def bert_tokenizer():
    from modernbert_glue.models import load_tokenizer, resolve_model

    return load_tokenizer(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))


def test_segment_ids_from_the_separator_equal_the_tokenizers_own(bert_tokenizer):
    mrpc = read_examples(SHARED / "data/mrpc/dev.tsv", get_task("mrpc"))
    pairs = texts_of(mrpc)[:64]
    ours = pad_batch([{"input_ids": ids} for ids in encode_texts(bert_tokenizer, pairs, 128)],
                     bert_tokenizer.pad_token_id, sep_id=sep_for(bert_tokenizer))
    theirs = bert_tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True, max_length=128,
                            padding=True, return_tensors="np")
    assert np.array_equal(ours["input_ids"], theirs["input_ids"])
    assert np.array_equal(ours["token_type_ids"], theirs["token_type_ids"])
    assert ours["token_type_ids"].any()  # pairs do have a second segment
    single = encode_texts(bert_tokenizer, ["one sentence only"], 128)
    assert not type_ids(np.array(single), sep_for(bert_tokenizer)).any()


def test_pairs_truncate_longest_first_and_text_cannot_forge_a_separator(bert_tokenizer):
    long, short = "word " * 300, "a short hypothesis"
    ids = encode_texts(bert_tokenizer, [(long, short)], 32)[0]
    sep = bert_tokenizer.sep_token_id
    assert len(ids) == 32 and ids.count(sep) == 2
    tail = ids[ids.index(sep) + 1:-1]
    assert bert_tokenizer.decode(tail) == short  # the long text was cut, the short one kept whole
    forged = encode_texts(bert_tokenizer, ["left [SEP] right"], 32)[0]
    assert forged.count(sep) == 1  # the written "[SEP]" is text; the only separator is the tokenizer's


def test_mnli_layout_and_its_mismatched_dev_set(tmp_path):
    """MNLI's GLUE files (not in ../shared: its layout, with real RTE text): gold_label read by name, and the
    mismatched dev set evaluated beside the matched one."""
    from modernbert_glue.data import labelled_eval_sets, load_columns

    from .conftest import mnli_folder

    mnli_folder(tmp_path / "mnli", 6)
    rte = texts_of(read_examples(SHARED / "data/rte/dev.tsv", get_task("rte")))[:6]
    data = DataConfig(task="mnli", data_dir=str(tmp_path / "mnli"))
    task = task_for(data)
    dev = load_columns(data, task, "validation")
    assert dev["label"] == [0, 1, 2, 0, 1, 2] and dev["sentence2"][0] == rte[0][1]
    sets = labelled_eval_sets(data, task, dev)
    assert list(sets) == ["dev", "dev_mismatched"] and sets["dev_mismatched"]["label"] == dev["label"]


def test_numeric_labels_match_by_name_for_own_data_and_by_id_for_glue(tmp_path):
    from modernbert_glue.labels import parse_label

    own = get_task("custom").with_labels(["1", "2", "3"])
    assert [parse_label(v, own, "x") for v in ("1", 1, 1.0, 3)] == [0, 0, 0, 2]  # jsonl ints as tsv text
    assert parse_label(1.0, get_task("sst2"), "x") == 1  # pandas writes labels as floats


def test_qqp_skips_glues_malformed_rows_and_other_tasks_refuse_them(tmp_path):
    rows = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", "0\t1\t2\tWhy?\tHow?\t0", "1\t3\tbroken",
            "2\t4\t5\tWhat?\tWhen?\t1"]
    path = tmp_path / "train.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert read_examples(path, get_task("qqp"))["label"] == [0, 1]
    rte = tmp_path / "rte.tsv"
    rte.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tbroken\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"rte.tsv, line 3: expected 4 fields"):
        read_examples(rte, get_task("rte"))


def test_predict_reads_a_headerless_glue_file_by_the_models_task():
    from modernbert_glue.errors import UserError
    from modernbert_glue.inference.predict import read_texts

    dev = str(SHARED / "data/cola/dev.tsv")
    texts = read_texts(dev, None, get_task("cola"))  # a CoLA model's own dev file: its layout
    assert len(texts) == 1043 and texts[0] == "The sailors rode the breeze clear of the rocks."
    with pytest.raises(UserError, match="no column"):  # another task's model takes its first row as a header
        read_texts(dev, None, get_task("sst2"))


def test_a_split_is_named_as_the_datasets_or_as_its_glue_file():
    from modernbert_glue.data import split_named

    mnli, sst2, custom = get_task("mnli"), get_task("sst2"), get_task("custom")
    assert [split_named(sst2, s) for s in ("train", "dev", "validation", "test")] == ["train", "validation",
                                                                                      "validation", "test"]
    assert split_named(mnli, "dev_mismatched") == split_named(mnli, "validation_mismatched") == "validation_mismatched"
    assert split_named(mnli, "dev_matched") == "validation" and split_named(custom, "dev") == "validation"
    with pytest.raises(UserError, match=r"unknown split 'dev_mismatched' \(use train, validation, test\)"):
        split_named(sst2, "dev_mismatched")


def test_a_file_is_read_by_glues_layout_a_header_the_models_columns_or_the_generic_ones(tmp_path):
    from modernbert_glue.inference.predict import file_task

    from .conftest import write_tsv

    cola, dev = get_task("cola"), SHARED / "data/cola/dev.tsv"
    own = cola.with_columns(["text"])  # a CoLA model trained on a file of its own columns
    assert len(texts_of(read_examples(dev, file_task(str(dev), own)))) == 1043  # GLUE's headerless dev.tsv
    named = write_tsv(tmp_path / "dev.tsv", ["sentence\tgrade", "fine\t1"])  # named like it, with a header
    assert read_examples(named, file_task(str(named), cola, None, "grade"))["label"] == [1]
    hub = write_tsv(tmp_path / "hub.tsv", ["sentence1\tsentence2\tlabel", "a\tb\t3.5"])  # STS-B's score as `label`
    assert read_examples(hub, file_task(str(hub), get_task("stsb")))["label"] == [3.5]
    pairs = write_tsv(tmp_path / "predictions_dev.tsv", ["idx\tsentence1\tsentence2\tlabel\tprediction\tscore",
                                                         "0\ta\tb\t1\t1\t0.9"])
    assert texts_of(read_examples(pairs, file_task(str(pairs), get_task("sst2"), ["sentence1"]))) == ["a"]
    with pytest.raises(UserError, match="predictions of a model of sentence pairs; this one classifies single"):
        file_task(str(pairs), get_task("sst2"))
