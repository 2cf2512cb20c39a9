import json
import re
import shutil

import pytest

from modernbert_glue.data import read_examples, read_lines
from modernbert_glue.errors import UserError
from modernbert_glue.tasks import get_task

from .conftest import MODERNBERT, SST2, TINY_ARGS, run_cli, write_tsv

SST = get_task("sst2")
GOOD_DEV = ["sentence\tlabel", "a fine film\t1", "a dull film\t0"]


def test_glue_tsv_keeps_quotes_and_every_row():
    dev = read_examples(SST2 / "dev.tsv", SST)
    assert len(dev["sentence"]) == 872 and set(dev["label"]) == {0, 1}
    train = read_examples(SST2 / "train.tsv", SST)
    assert len(train["sentence"]) == 67349
    test = read_examples(SST2 / "test.tsv", SST, require_label=False)
    assert len(test["sentence"]) == 1821 and "label" not in test


def test_tsv_has_no_quoting(tmp_path):
    f = tmp_path / "q.tsv"
    f.write_text('sentence\tlabel\n"the best" movie , "ever\t1\n')
    assert read_examples(f, SST)["sentence"] == ['"the best" movie , "ever']


def test_final_newline_is_not_an_empty_line(tmp_path):
    f = tmp_path / "a.tsv"
    f.write_text("sentence\tlabel\ngood\t1\n")
    assert read_examples(f, SST) == {"sentence": ["good"], "label": [1]}
    f.write_text("sentence\tlabel\ngood\t1")  # and no final newline at all
    assert read_examples(f, SST)["label"] == [1]


def test_other_formats_read_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"sentence": 'he said "wow", twice', "label": 1}, {"sentence": "meh", "label": 0}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "a.csv").write_text('sentence,label\n"he said ""wow"", twice",1\nmeh,0\n')
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    expected = {"sentence": [r["sentence"] for r in rows], "label": [1, 0]}
    for name in ("a.jsonl", "a.csv", "a.parquet"):
        assert read_examples(tmp_path / name, SST) == expected, name


def test_plain_text_lines(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("one\ntwo\n")
    assert read_lines(f) == ["one", "two"]
    f.write_text("one\n \ntwo\n")
    with pytest.raises(UserError, match=r"in.txt, line 2: empty line"):
        read_lines(f)
    f.write_text("one\ntwo\n\n \r\n\n")  # blank lines an editor left at the end: no rows, no error
    assert read_lines(f) == ["one", "two"]


def test_a_utf16_file_is_named_as_such(tmp_path):
    """It was "line 1: not valid UTF-8 (byte 1 of the line)"."""
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood\t1\n", encoding="utf-16")
    with pytest.raises(UserError, match=r"train.tsv: UTF-16 text \(it starts with UTF-16's byte-order mark\); save it"):
        read_examples(path, get_task("sst2"))
    path.write_text("sentence\tlabel\ngood\t1\n", encoding="utf-16-le")  # no mark: its NUL bytes were printed
    with pytest.raises(UserError, match=r"train.tsv: UTF-16 text \(every other byte is 0\); save it as UTF-8"):
        read_examples(path, get_task("sst2"))


def test_blank_lines_at_the_end_of_a_data_file_are_no_rows(tmp_path):
    """They were "line 4: expected 2 fields separated by '\\t', found 1" (one inside a file: empty_line above)."""
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\ngood\t1\nbad\t0\n\n\n")
    assert read_examples(path, get_task("sst2"))["label"] == [1, 0]



def test_an_stsb_score_outside_its_scale_is_refused(tmp_path):
    """A 9 (or a score scaled 0-100) trained and evaluated quietly; a custom regression takes any number."""
    path = tmp_path / "train.tsv"
    path.write_text("sentence1\tsentence2\tscore\na\tb\t5.0\nc\td\t9\n")
    with pytest.raises(UserError, match=r"train.tsv, line 3: score '9' is outside stsb's scale, 0 to 5$"):
        read_examples(path, get_task("stsb"))
    custom = get_task("custom").with_columns(["sentence1", "sentence2"], "score", regression=True)
    assert read_examples(path, custom)["label"] == [5.0, 9.0]


BAD_TRAIN = {
    "missing_column": (["text\tlabel", "good\t1"], r"train.tsv: missing column 'sentence' \(sst2 classifies single sentences: expected sentence; found: text, label\)"),
    "missing_label": (["sentence", "good"], r"train.tsv: missing label column 'label' \(found: sentence\)"),
    "label_out_of_range": (["sentence\tlabel", "good\t1", "bad\t2"], r"train.tsv, line 3: label '2' is not one of 0, 1, negative, positive"),
    "label_not_a_number": (["sentence\tlabel", "good\tgreat"], r"train.tsv, line 2: label 'great' is not one of 0, 1, negative, positive"),
    "empty_sentence": (["sentence\tlabel", "good\t1", "\t0"], r"train.tsv, line 3: empty 'sentence'"),
    "whitespace_sentence": (["sentence\tlabel", "   \t0"], r"train.tsv, line 2: empty 'sentence'"),
    "empty_line": (["sentence\tlabel", "good\t1", "", "bad\t0"], r"train.tsv, line 3: empty line \(every line must"),
    "zero_rows": (["sentence\tlabel"], r"train.tsv: no rows"),
    "empty_file": ([], r"train.tsv: empty file"),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_data_folder_exits_2_with_one_line(case, tmp_path):
    import re

    lines, message = BAD_TRAIN[case]
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.tsv").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    write_tsv(folder / "dev.tsv", GOOD_DEV)
    code, stdout, stderr = run_cli("train", "--data-dir", folder, "--output-dir", tmp_path / "out")
    assert code == 2, stderr
    assert re.search(message, stderr), stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stdout == ""


def test_undecodable_bytes_name_the_line(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.tsv").write_bytes(b"sentence\tlabel\ngood\t1\ncaf\xe9 latte\t1\n")
    write_tsv(folder / "dev.tsv", GOOD_DEV)
    code, _, stderr = run_cli("train", "--data-dir", folder, "--output-dir", tmp_path / "out")
    assert code == 2
    assert "train.tsv, line 3: not valid UTF-8" in stderr and "Traceback" not in stderr


def test_missing_files_and_folders(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    write_tsv(folder / "dev.tsv", GOOD_DEV)
    code, _, stderr = run_cli("train", "--data-dir", folder, "--output-dir", tmp_path / "out")
    assert code == 2 and "train.tsv: file not found" in stderr
    code, _, stderr = run_cli("train", "--data-dir", tmp_path / "nope", "--output-dir", tmp_path / "out")
    assert code == 2 and "nope: data folder not found" in stderr
    shutil.copy(folder / "dev.tsv", folder / "train.tsv")
    code, _, stderr = run_cli("train", "--data-dir", folder, "--validation-file", tmp_path / "v.jsonl",
                              "--output-dir", tmp_path / "out")
    assert code == 2 and "v.jsonl: file not found" in stderr


def test_bad_jsonl_and_unknown_suffix(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text('{"sentence": "ok", "label": 1}\n{"sentence": "x", "label": \n')
    with pytest.raises(UserError, match=r"a.jsonl, line 2: not valid JSON"):
        read_examples(f, SST)
    g = tmp_path / "a.xlsx"
    g.write_text("x")
    with pytest.raises(UserError, match=r"unsupported file type '.xlsx'"):
        read_examples(g, SST)


def test_columns_load_without_datasets(tmp_path):
    """The training engine reads splits as plain columns, where `datasets` is not installed (the GPU image);
    only the Trainer's `load_split` needs it."""
    import os
    import subprocess
    import sys

    (tmp_path / "datasets.py").write_text("raise ImportError('datasets is not installed here')\n")
    write_tsv(tmp_path / "dev.tsv", GOOD_DEV)
    code = (
        "from modernbert_glue.config import DataConfig\n"
        "from modernbert_glue.data import labelled_eval_sets, load_columns, load_split\n"
        "from modernbert_glue.tasks import get_task\n"
        f"data, task = DataConfig(data_dir={str(tmp_path)!r}, max_eval_samples=1), get_task('sst2')\n"
        "dev = load_columns(data, task, 'validation')\n"
        "assert dev == {'sentence': ['a fine film'], 'label': [1]}, dev\n"
        "assert labelled_eval_sets(data, task, dev) == {'dev': dev}\n"
        "try:\n    load_split(data, task, 'validation')\nexcept ImportError:\n    print('no datasets')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "no datasets", proc.stderr[-2000:]


def test_the_hub_path_maps_the_hubs_columns_and_splits(monkeypatch):
    """nyu-mll/glue names MNLI's texts premise/hypothesis and its dev set validation_matched, and hides test labels
    as -1 (this machine is offline: `datasets.load_dataset` is replaced by the Hub's schema)."""
    import datasets

    from modernbert_glue import hub
    from modernbert_glue.config import DataConfig
    from modernbert_glue.data import load_columns
    from modernbert_glue.tasks import get_task

    calls = []

    def load_dataset(path, config, split):
        calls.append((path, config, split))
        if config == "stsb":
            return {"sentence1": ["a", "b"], "sentence2": ["c", "d"], "label": [4.5, 1.0], "idx": [0, 1]}
        labels = [-1, -1] if split.startswith("test") else [2, 0]
        return {"premise": ["p1", "p2"], "hypothesis": ["h1", "h2"], "label": labels, "idx": [0, 1]}

    monkeypatch.delenv("MODERNBERT_GLUE_DATA_DIR", raising=False)
    monkeypatch.setattr(hub, "hub_available", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    mnli = get_task("mnli")
    dev = load_columns(DataConfig(task="mnli"), mnli, "validation")
    assert dev == {"sentence": ["p1", "p2"], "sentence2": ["h1", "h2"], "label": [2, 0]}
    test = load_columns(DataConfig(task="mnli"), mnli, "test")
    assert "label" not in test and test["sentence2"] == ["h1", "h2"]
    stsb = load_columns(DataConfig(task="stsb"), get_task("stsb"), "train")
    assert stsb["label"] == [4.5, 1.0] and stsb["sentence2"] == ["c", "d"]
    assert calls == [("nyu-mll/glue", "mnli", "validation_matched"), ("nyu-mll/glue", "mnli", "test_matched"),
                     ("nyu-mll/glue", "stsb", "train")]


def test_csv_fields_are_one_line_each(tmp_path):
    """A quoted line break is refused on the line it starts: csv.reader alone ends the field at the line's end,
    which in a one-column file read one row as two ('a line', 'break"'). Doubled and stray quotes read as
    before."""
    task = get_task("custom").with_columns(["text"], None, regression=False)
    quoted = write_tsv(tmp_path / "quoted.csv", ["text", '"a line', 'break"', "fine"])
    with pytest.raises(UserError, match=r"quoted.csv, line 2: a quoted field runs past the end of the line; fields "
                                        r"spanning lines \(a line break inside quotes\) are not supported"):
        read_examples(quoted, task, require_label=False)
    ok = write_tsv(tmp_path / "ok.csv", ["text", '"he said ""hi"""', '"x"y', 'a "b'])
    assert read_examples(ok, task, require_label=False)["sentence"] == ['he said "hi"', "xy", 'a "b']


def test_cr_only_line_endings_are_named(tmp_path):
    """Split on LF only, a file with classic Mac OS line endings is one line: it said "no rows"."""
    path = tmp_path / "cr.tsv"
    path.write_bytes(b"sentence\tlabel\rgood\t1\rbad\t0\r")
    with pytest.raises(UserError, match=r"cr.tsv: its line endings are CR only \(classic Mac OS\)"):
        read_examples(path, get_task("sst2"))
    path.write_bytes(b"sentence\tlabel\r\ngood\t1\r\n")  # CRLF, and a lone trailing CR, read as ever
    assert read_examples(path, get_task("sst2"))["sentence"] == ["good"]
    (tmp_path / "one.txt").write_bytes(b"a fine film\r")
    assert read_lines(tmp_path / "one.txt") == ["a fine film"]


def test_custom_labels_that_are_one_number_written_two_ways_are_refused():
    """"01" and "1" became two classes (a binary task trained as three, its f1 dropped)."""
    from modernbert_glue.labels import with_found_labels
    from modernbert_glue.tasks import get_task

    task = get_task("custom")
    with pytest.raises(UserError, match="z.csv: labels '01' and '1' are the same number; write each class one way"):
        with_found_labels(task, {"sentence": ["a", "b", "c"], "label": ["01", "1", "0"]}, "z.csv")
    found, columns = with_found_labels(task, {"sentence": ["a", "b", "c"], "label": ["10", "2", "0"]}, "z.csv")
    assert found.label_names == ("0", "2", "10") and columns["label"] == [2, 1, 0]  # numeric order


def test_encode_texts_cuts_the_end_or_the_start_and_leaves_the_tokenizer_as_it_was(small_sst2):
    from modernbert_glue.data import encode_texts
    from modernbert_glue.models import load_tokenizer

    from .conftest import MODERNBERT

    tokenizer = load_tokenizer(MODERNBERT)
    text, pair = "one two three four five six seven eight", ("alpha beta gamma delta", "one two three four five six")
    whole, whole_pair = encode_texts(tokenizer, [text, pair], 64)
    right, right_pair = encode_texts(tokenizer, [text, pair], 6)
    left, left_pair = encode_texts(tokenizer, [text, pair], 6, side="left")
    assert right[1:-1] == whole[1:5] and left[1:-1] == whole[-5:-1] and right[0] == left[0] == whole[0]
    assert len(right_pair) == len(left_pair) == 6 and right_pair != left_pair
    assert tokenizer.truncation_side == "right"


def test_a_folder_named_after_another_glue_task_is_refused(tmp_path):
    """WNLI's files have RTE's columns but the reverse label order: read as RTE, every label flips silently."""
    from modernbert_glue.config import DataConfig
    from modernbert_glue.data import load_columns
    from modernbert_glue.tasks import get_task

    from .conftest import SHARED

    wnli = tmp_path / "WNLI"
    shutil.copytree(SHARED / "data" / "wnli", wnli)
    with pytest.raises(UserError, match="^" + re.escape(
            f"--data-dir {wnli}: a folder of task wnli's files, read as task rte; pass --task wnli, or name its "
            "files one by one (train's --train-file/--validation-file, evaluate's --file)") + "$"):
        load_columns(DataConfig(task="rte", data_dir=str(wnli)), get_task("rte"), "validation")
    copied = tmp_path / "copied"  # the same files under another name: their ids give them away
    shutil.copytree(SHARED / "data" / "wnli", copied)
    with pytest.raises(UserError, match="^" + re.escape(f"{copied / 'dev.tsv'}: line 2: label '0' is an id, but "
                                                        "GLUE's RTE files name their labels (entailment, "
                                                        "not_entailment): another task's files?")):
        load_columns(DataConfig(task="rte", data_dir=str(copied)), get_task("rte"), "validation")
    rte = load_columns(DataConfig(task="rte", data_dir=str(SHARED / "data" / "rte")), get_task("rte"), "validation")
    assert set(rte["label"]) == {0, 1}
    assert load_columns(DataConfig(task="wnli", data_dir=str(wnli)), get_task("wnli"), "validation")["label"]
    (tmp_path / "SST-2").symlink_to(SHARED / "data" / "sst2")  # GLUE's own spelling of the task's folder
    load_columns(DataConfig(task="sst2", data_dir=str(tmp_path / "SST-2")), get_task("sst2"), "validation")


def _custom_run_data(tmp_path, train: str, dev: str, suffix: str = ".csv", **data):
    from modernbert_glue.config import DataConfig
    from modernbert_glue.data import load_run_data

    (tmp_path / f"train{suffix}").write_text(train)
    (tmp_path / f"dev{suffix}").write_text(dev)
    return load_run_data(DataConfig(task="custom", text_columns=["text"], label_column="label",
                                    train_file=str(tmp_path / f"train{suffix}"),
                                    validation_file=str(tmp_path / f"dev{suffix}"), **data))


def test_a_custom_tasks_labels_are_names_in_every_format_never_ids(tmp_path):
    """A dev label that is no training label was read as an index into the sorted names (dev "1" against
    "1.0, 2.0, 3.0" became "2.0"); "1.0" in a csv cell was a class name of its own, and 1.0 in JSON the class 1."""
    task, train, sets = _custom_run_data(tmp_path, "text,label\na,1.0\nb,2.0\nc,3.0\n", "text,label\nd,1\ne,2\n")
    assert task.label_names == ("1", "2", "3") and train["label"] == [0, 1, 2] and sets["dev"]["label"] == [0, 1]
    rows = "".join(json.dumps({"text": t, "label": v}) + "\n" for t, v in (("a", 1), ("b", 2), ("c", "unknown")))
    with pytest.raises(UserError, match=r"dev.jsonl, line 1: label 0 is not one of 1, 2, unknown$"):
        _custom_run_data(tmp_path, rows, json.dumps({"text": "d", "label": 0}) + "\n", ".jsonl")
    with pytest.raises(UserError, match=r"train.csv, line 2: label '1.5' is not a class label \(for numbers to "
                                        r"predict, use --regression\)"):
        _custom_run_data(tmp_path, "text,label\na,1.5\nb,2\nc,0.25\n", "text,label\nd,2\n")
    with pytest.raises(UserError, match=r"train.jsonl, line 1: label \[1\] is not a class label"):
        _custom_run_data(tmp_path, '{"text": "a", "label": [1]}\n{"text": "b", "label": 2}\n', "", ".jsonl")


def test_max_train_samples_cuts_rows_not_the_classes(tmp_path):
    """Classes were found in the first N rows only: a dev label of a later class was refused, or one class left."""
    rows = "text,label\n" + "".join(f"s{i},{c}\n" for i, c in enumerate("xyxzyz"))
    task, train, sets = _custom_run_data(tmp_path, rows, rows, max_train_samples=3)
    assert task.label_names == ("x", "y", "z") and train["label"] == [0, 1, 0] and len(sets["dev"]["label"]) == 6


def test_repeated_columns_and_keys_are_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table([["a"], ["b"], [1]], names=["sentence", "sentence", "label"]), tmp_path / "d.parquet")
    with pytest.raises(UserError, match=r"^\S*d.parquet: column 'sentence' appears more than once$"):
        read_examples(tmp_path / "d.parquet", SST)
    (tmp_path / "d.jsonl").write_text('{"sentence": "a", "sentence": "b", "label": 1}\n')  # json kept the last
    with pytest.raises(UserError, match=r"d.jsonl, line 1: key 'sentence' appears more than once$"):
        read_examples(tmp_path / "d.jsonl", SST)


def test_one_file_given_says_the_other_split_comes_from_the_hub(small_sst2, tmp_path, monkeypatch):
    from modernbert_glue import hub

    monkeypatch.setattr(hub, "hub_available", lambda timeout=3.0: False)  # as offline, wherever the tests run
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--train-file",
                              small_sst2 / "train.tsv", "-o", tmp_path / "run", "--check",
                              env={"MODERNBERT_GLUE_DATA_DIR": ""})
    lines = stderr.strip().splitlines()
    assert code == 2 and "no --validation-file given: task sst2's validation split comes from the Hub" in stderr
    assert lines[-1] == ("error: the Hugging Face Hub is not reachable to load nyu-mll/glue/sst2: pass "
                         "--validation-file too, or --data-dir FOLDER"), lines[-1]


def test_one_file_for_train_and_dev_is_warned_about(tmp_path, caplog):
    """Its dev scores are on the training data: the card and the GLUE table would carry an inflated score."""
    from modernbert_glue.config import DataConfig
    from modernbert_glue.data import load_run_data

    data = write_tsv(tmp_path / "all.tsv", GOOD_DEV)
    with caplog.at_level("WARNING"):
        load_run_data(DataConfig(train_file=str(data), validation_file=str(tmp_path / "." / "all.tsv")))
    assert "--train-file and --validation-file are one file" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        load_run_data(DataConfig(train_file=str(data), validation_file=str(write_tsv(tmp_path / "dev.tsv", GOOD_DEV))))
    assert "one file" not in caplog.text


def test_a_file_with_the_hubs_or_glues_generic_names_trains_as_it_evaluates(tmp_path):
    """train took a task's own GLUE file names only (MNLI's gold_label, MRPC's #1 String), while evaluate and
    predict read `label` and the generic sentence1, sentence2: a Hub export (premise, hypothesis, label) or a file
    `evaluate` scored was refused by train. Now both read a file alike (readers.with_file_columns)."""
    from modernbert_glue.config import DataConfig
    from modernbert_glue.data import load_columns
    from modernbert_glue.inference.predict import file_task

    hub = tmp_path / "mnli.jsonl"
    hub.write_text("\n".join(json.dumps({"premise": f"A man sleeps {i}.", "hypothesis": "A man rests.", "label": i % 3})
                             for i in range(6)) + "\n")
    generic = tmp_path / "pairs.jsonl"
    generic.write_text("\n".join(json.dumps({"sentence1": "A dog.", "sentence2": f"A cat {i}.", "label": i % 2})
                                 for i in range(4)) + "\n")
    mnli = load_columns(DataConfig(task="mnli", train_file=str(hub)), get_task("mnli"), "train")
    assert mnli["sentence"][1] == "A man sleeps 1." and mnli["sentence2"][0] == "A man rests."
    assert mnli["label"] == [0, 1, 2, 0, 1, 2]
    for task in ("stsb", "mrpc", "qnli", "rte"):  # GLUE's generic pair names, whatever the task's files call theirs
        data = load_columns(DataConfig(task=task, train_file=str(generic)), get_task(task), "train")
        assert data["sentence2"][3] == "A cat 3." and len(data["label"]) == 4, task
    assert load_columns(DataConfig(task="stsb", validation_file=str(generic)), get_task("stsb"),
                        "validation")["label"] == [0.0, 1.0, 0.0, 1.0]
    assert file_task(str(hub), get_task("mnli")).text_columns == ("premise", "hypothesis")  # predict/evaluate alike
    # columns the options name are read as named, and a file with none of the names says which it takes
    with pytest.raises(UserError, match=r"mnli.jsonl: missing column 'a'"):
        load_columns(DataConfig(task="mnli", train_file=str(hub), text_columns=["a", "b"]), get_task("mnli").with_columns(
            ["a", "b"]), "train")
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"p": "x", "h": "y", "label": 0}) + "\n")
    with pytest.raises(UserError, match=r"odd.jsonl: no column\(s\) sentence1, sentence2 or premise, hypothesis "
                                        r"\(name yours with --text-columns\); found: p, h, label"):
        file_task(str(odd), get_task("mnli"))


def test_a_pipe_given_as_a_table_is_one_line_not_a_hang(tmp_path):
    """A FIFO as --train-file, --file or --input hung: its header was read before the file was checked. A table
    is read from a file on disk; plain lines of text may still come through a pipe (`--input <(cut ...)`)."""
    import os
    import threading

    from modernbert_glue.config import DataConfig
    from modernbert_glue.data import header_columns, load_columns

    fifo = tmp_path / "f.tsv"
    os.mkfifo(fifo)

    def write(pipe, data: bytes = b"") -> None:  # a reader that opened the pipe gets `data` and an end, not a hang
        with open(pipe, "wb") as writer:
            writer.write(data)

    guard = threading.Timer(5, write, (fifo,))
    guard.daemon = True  # (a reader that never opens the pipe must not keep pytest from ending)
    guard.start()
    try:
        assert header_columns(fifo) is None
        for call in (lambda: read_examples(fifo, SST), lambda: load_columns(DataConfig(validation_file=str(fifo)), SST,
                                                                              "validation")):
            with pytest.raises(UserError, match=r"f.tsv: not a regular file \(a pipe or a device\); give a file"):
                call()
    finally:
        guard.cancel()
    text = tmp_path / "lines.txt"
    os.mkfifo(text)
    threading.Thread(target=write, args=(text, b"a fine film\n"), daemon=True).start()
    assert read_lines(text) == ["a fine film"]
