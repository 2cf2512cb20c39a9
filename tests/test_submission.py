"""`glue-submission`: each prediction goes out under its test row's own id (the file's `index`, QQP's `id`, the
Hub's idx), a malformed test row is refused rather than skipped, and what it reads (a run, its model, an unfinished
--seeds folder) is never written into nor predicted from."""

import json
import shutil

import pytest

from modernbert_glue.config import DataConfig
from modernbert_glue.data import load_columns
from modernbert_glue.errors import UserError
from modernbert_glue.tasks import ID_KEY, get_task
from tests.conftest import run_cli, write_tsv

QQP_TEST = ["id\tquestion1\tquestion2", "12\tWhat is AI?\tWhat is artificial intelligence?",
            "5\tHow do I cook rice?\tHow should rice be cooked?", "40\tIs it raining?\tWill it rain?"]


def _rte_root(tmp_path, lines):
    root = tmp_path / "glue"
    (root / "rte").mkdir(parents=True)
    write_tsv(root / "rte" / "test.tsv", lines)
    return root


def test_each_prediction_goes_out_under_its_rows_own_index(rte_run, tmp_path):
    """The index written was the row's position: a test file whose rows are not 0, 1, 2, ... (or one row skipped
    before) put every later prediction on another row's id."""
    root = _rte_root(tmp_path, ["index\tsentence1\tsentence2", "7\tA man sleeps.\tA man rests.",
                                "3\tIt rains.\tThe sun shines.", "12\tA dog barks.\tAn animal makes a sound."])
    code, _, stderr = run_cli("glue-submission", rte_run, "--output", tmp_path / "sub", "--data-root", root)
    assert code == 0, stderr[-2000:]
    lines = (tmp_path / "sub" / "RTE.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction"
    assert [line.split("\t")[0] for line in lines[1:]] == ["7", "3", "12"]


def test_a_test_split_keeps_every_row_with_its_id(tmp_path):
    """QQP's reader skips malformed training rows; in a test split that dropped a row (exit 0, one warning), and
    the rows after it took the wrong ids. Its ids are the file's `id` column."""
    qqp = tmp_path / "qqp"
    qqp.mkdir()
    write_tsv(qqp / "test.tsv", QQP_TEST)
    data, task = DataConfig(task="qqp", data_dir=str(qqp)), get_task("qqp")
    assert load_columns(data, task, "test", ids=True)[ID_KEY] == ["12", "5", "40"]
    write_tsv(qqp / "test.tsv", [*QQP_TEST[:2], "5\tHow do I cook rice?", QQP_TEST[3]])
    with pytest.raises(UserError, match=r"^.*qqp/test\.tsv, line 3: expected 3 fields separated by '\\t', found 2$"):
        load_columns(data, task, "test", ids=True)
    write_tsv(qqp / "test.tsv", [*QQP_TEST[:3], QQP_TEST[3].replace("40", "12", 1)])
    with pytest.raises(UserError, match=r"test\.tsv, line 4: 'id' 12 is the id of line 2 too$"):
        load_columns(data, task, "test", ids=True)
    write_tsv(qqp / "test.tsv", ["question1\tquestion2", *(line.split("\t", 1)[1] for line in QQP_TEST[1:])])
    with pytest.raises(UserError, match=r"test\.tsv: missing id column 'id' \(the GLUE server matches"):
        load_columns(data, task, "test", ids=True)


def test_the_hub_gives_the_ids_the_file_gives(tmp_path, monkeypatch):
    """The Hub's idx, not the position: the same rows from the Hub and from GLUE's file get the same ids."""
    import datasets

    import modernbert_glue.hub

    rows = [line.split("\t") for line in QQP_TEST[1:]]
    hub = datasets.Dataset.from_dict({"question1": [r[1] for r in rows], "question2": [r[2] for r in rows],
                                      "label": [-1] * len(rows), "idx": [int(r[0]) for r in rows]})
    monkeypatch.setattr(modernbert_glue.hub, "hub_available", lambda: True)
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: hub)
    monkeypatch.delenv("MODERNBERT_GLUE_DATA_DIR", raising=False)
    task = get_task("qqp")
    from_hub = load_columns(DataConfig(task="qqp"), task, "test", ids=True)
    (tmp_path / "qqp").mkdir()
    write_tsv(tmp_path / "qqp" / "test.tsv", QQP_TEST)
    from_file = load_columns(DataConfig(task="qqp", data_dir=str(tmp_path / "qqp")), task, "test", ids=True)
    assert from_hub[ID_KEY] == from_file[ID_KEY] == ["12", "5", "40"]
    assert from_hub == from_file


def test_the_submission_is_never_written_inside_a_run_it_reads(rte_run, tmp_path):
    """Inside the run (or the run around the model given) it changed that run and blocked its `train --overwrite`;
    `compare` refuses a report there."""
    root = _rte_root(tmp_path, ["index\tsentence1\tsentence2", "0\tA man sleeps.\tA man rests."])
    for given, output in ((rte_run, rte_run / "model" / "sub"), (rte_run / "model", rte_run / "sub")):
        code, stdout, stderr = run_cli("glue-submission", given, "--output", output, "--data-root", root)
        assert code == 2 and stdout == "" and not output.exists(), stderr[-2000:]
        assert stderr.strip().splitlines()[-1] == (f"error: --output {output}: inside the run folder {rte_run}; "
                                                   "write the submission beside the runs")


def test_an_unfinished_seeds_folder_is_refused_as_compare_refuses_it(rte_run, tmp_path):
    """Its best seed's finished model was predicted; `compare` refuses the folder with one line, and so does this."""
    seeds = tmp_path / "seeds"
    shutil.copytree(rte_run, seeds / "seed-1")
    (seeds / ".modernbert-glue.json").write_text(json.dumps({"kind": "seeds", "complete": False,
                                                             "files": ["seed-1"]}))
    (seeds / "seeds.json").write_text(json.dumps({
        "seeds": [1], "main_metric": "accuracy", "eval_accuracy_mean": 0.5, "eval_accuracy_std": 0.0,
        "per_seed": [{"seed": 1, "eval_accuracy": 0.5}]}))
    root = _rte_root(tmp_path, ["index\tsentence1\tsentence2", "0\tA man sleeps.\tA man rests."])
    code, stdout, stderr = run_cli("glue-submission", seeds, "--output", tmp_path / "sub", "--data-root", root)
    assert code == 2 and stdout == "" and not (tmp_path / "sub").exists(), stderr[-2000:]
    _, _, compared = run_cli("compare", seeds, "--output", tmp_path / "report")
    line = stderr.strip().splitlines()[-1]
    assert line == compared.strip().splitlines()[-1] and line.startswith(f"error: {seeds}: unfinished seeds folder")
