"""Pair, three-class and regression tasks through the real entry points with the tiny ModernBERT: train, the run
folder and its metrics, evaluate, predict, the model card, transformers' pipeline, ONNX and the server."""

import csv
import json
import math

import numpy as np
import pytest
import yaml

from modernbert_glue.evaluation.metrics import classification_metrics, regression_metrics
from modernbert_glue.evaluation.runfolder import read_predictions

from ..conftest import PROB_ATOL, SHARED, assert_probs_close, glue_folder, run_cli, tiny_train_args, write_tsv


@pytest.fixture(scope="module")
def three_class_run(tmp_path_factory):
    """Your own data: a csv of STS-B pairs whose score is binned into three string labels."""
    root = tmp_path_factory.mktemp("own")
    rows = list(csv.reader((SHARED / "data/stsb/train.tsv").open(encoding="utf-8"), delimiter="\t",
                           quoting=csv.QUOTE_NONE))[1:]
    for name, part in (("train.csv", rows[:96]), ("dev.csv", rows[96:144])):
        with (root / name).open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["first", "second", "level"])
            for r in part:
                score = float(r[9])
                writer.writerow([r[7], r[8], "low" if score < 1.7 else "mid" if score < 3.4 else "high"])
    out = tmp_path_factory.mktemp("glue") / "own"
    code, _, stderr = run_cli(*tiny_train_args(root, out, "--task", "custom", "--text-columns", "first,second",
                                               "--label-column", "level", "--train-file", root / "train.csv",
                                               "--validation-file", root / "dev.csv", "--epochs", "1",
                                               "--set", "data.max_length=100000"))  # above the tokenizer's 8192
    assert code == 0, stderr[-3000:]
    return out


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_pair_run_reports_the_tasks_metrics_from_its_predictions(rte_run):
    m = _metrics(rte_run)
    assert m["task"] == "rte" and m["main_metric"] == "accuracy" and m["input_path"] == "packed"
    assert "eval_accuracy_ci" in m and "eval_f1" not in m  # RTE's metric only (its class 1 is not "positive")
    evaluations = [e for e in json.loads((rte_run / "log_history.json").read_text())["log_history"] if "eval_loss" in e]
    assert evaluations and all("eval_accuracy" in e and "eval_f1" not in e for e in evaluations)  # logged as reported
    rows = read_predictions(rte_run / "predictions_dev.tsv")
    assert all(isinstance(text, tuple) and len(text) == 2 for _, text, *_ in rows)  # both texts kept
    recomputed = classification_metrics([r[2] for r in rows], [r[3] for r in rows], 2)
    assert m["eval_accuracy"] == pytest.approx(recomputed["accuracy"]) and m["eval_samples"] == 48
    settings = json.loads((rte_run / "model/inference.json").read_text())
    assert settings["text_columns"] == ["sentence1", "sentence2"] and settings["regression"] is False


def test_regression_run_has_one_output_and_correlation_metrics(stsb_run):
    m = _metrics(stsb_run)
    assert m["main_metric"] == "pearson" and {"eval_pearson", "eval_spearman", "eval_pearson_ci"} <= m.keys()
    assert "eval_accuracy" not in m and "eval_ece" not in m
    assert m["engine"] == "trainer"
    config = json.loads((stsb_run / "model/config.json").read_text())
    assert len(config["id2label"]) == 1 and config["problem_type"] == "regression"
    rows = read_predictions(stsb_run / "predictions_dev.tsv")
    assert all(isinstance(r[2], float) and isinstance(r[3], float) for r in rows)
    recomputed = regression_metrics([r[2] for r in rows], [r[3] for r in rows])
    assert m["eval_pearson"] == pytest.approx(recomputed["pearson"], abs=1e-5)
    worst = [line.split("\t") for line in (stsb_run / "misclassified_dev.tsv").read_text().splitlines()]
    assert worst[0][-1] == "abs_error" and len(worst) > 1  # the error, not the predicted value
    assert all(float(r[-1]) == pytest.approx(abs(float(r[-3]) - float(r[-2])), abs=1e-3) for r in worst[1:])


def test_own_three_class_pairs_keep_their_label_names(three_class_run):
    m = _metrics(three_class_run)
    assert m["task"] == "custom" and {"eval_accuracy", "eval_f1_macro", "eval_mcc"} <= m.keys()
    assert "eval_f1" not in m  # three classes: no positive class
    config = json.loads((three_class_run / "model/config.json").read_text())
    assert config["id2label"] == {"0": "high", "1": "low", "2": "mid"}
    analysis = json.loads((three_class_run / "analysis_dev.json").read_text())
    assert np.array(analysis["confusion_matrix"]).shape == (3, 3)
    code, stdout, stderr = run_cli("predict", "--model", three_class_run / "model", "a man plays", "a man plays music")
    assert code == 0, stderr
    assert json.loads(stdout)["label"] in ("high", "low", "mid")


def test_a_max_length_above_the_tokenizers_is_saved_as_what_inputs_were_cut_at(three_class_run):
    limit = json.loads((three_class_run / "model/tokenizer_config.json").read_text())["model_max_length"]
    assert limit == 8192  # ModernBERT's tokenizer; the run asked for 100000
    assert json.loads((three_class_run / "model/inference.json").read_text())["max_length"] == limit
    card = (three_class_run / "model/README.md").read_text()
    assert "cut at 8192 tokens" in card and "max length 8192" in card and "100000" not in card.split("```")[0]


def test_evaluate_reproduces_the_runs_dev_metrics(rte_run, stsb_run, three_class_run, tmp_path):
    """From the dev rows in the task's own layout, and from the run's predictions file as it is: its texts, and its
    `label` column's class ids as the gold labels (STS-B's `score` there is the prediction: read as the gold score,
    the Pearson would be 1), also with --text-columns given, and for a custom task's labels."""
    for run, task, metric in ((rte_run, "rte", "accuracy"), (stsb_run, "stsb", "pearson"),
                              (three_class_run, None, "accuracy")):
        predictions = run / "predictions_dev.tsv"
        own_layout = [["--file", _dev_file(run, task)]] if task else []
        named = ["--text-columns", "sentence1,sentence2"]
        for args in (*own_layout, ["--file", predictions], ["--file", predictions, *named]):
            code, stdout, stderr = run_cli("evaluate", "--model", run / "model", *args)
            assert code == 0, stderr
            result = json.loads(stdout)
            assert result[metric] == pytest.approx(_metrics(run)[f"eval_{metric}"], abs=1e-5), args
            reported = {key.removeprefix("eval_") for key in _metrics(run) if key.startswith("eval_")}
            assert set(result) - {"n"} == reported - {"samples", "split"}  # the run's metrics (RTE: no f1)
    single = write_tsv(tmp_path / "predictions_dev.tsv",
                       ["idx\tsentence\tlabel\tprediction\tscore", "0\tfine\t1\t1\t0.9"])
    for command in (["evaluate", "--file"], ["predict", "--input"]):  # a single-sentence model's, to a pair model
        code, _, stderr = run_cli(command[0], "--model", rte_run / "model", command[1], single)
        assert code == 2 and stderr.strip().splitlines()[-1] == (
            f"error: {single}: predictions of a model of single sentences; this one classifies sentence pairs")
    code, _, stderr = run_cli("evaluate", "--model", rte_run / "model", "--task", "mrpc", "--file",
                              _dev_file(rte_run, "rte"))
    assert code == 2 and "--task mrpc: " in stderr and "was trained on rte" in stderr


def _dev_file(run, task):
    """The run's dev rows as a file in the task's own layout (from its predictions, labels included)."""
    rows = read_predictions(run / "predictions_dev.tsv")
    path = run.parent / f"{task}-dev.tsv"
    label = "score" if task == "stsb" else "label"
    lines = [f"sentence1\tsentence2\t{label}"] + [f"{a}\t{b}\t{y}" for _, (a, b), y, *_ in rows]
    return write_tsv(path, lines)


def test_predict_takes_pairs_from_arguments_and_from_a_file(rte_run, tmp_path):
    model = rte_run / "model"
    code, stdout, stderr = run_cli("predict", "--model", model, "A man sleeps.", "A person rests.", "x", "y")
    assert code == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [(r["text"], r["text_pair"]) for r in records] == [("A man sleeps.", "A person rests."), ("x", "y")]
    write_tsv(tmp_path / "pairs.tsv", ["sentence1\tsentence2", "A man sleeps.\tA person rests.", "x\ty"])
    code, stdout2, stderr = run_cli("predict", "--model", model, "--input", tmp_path / "pairs.tsv")
    assert code == 0, stderr
    assert_probs_close([json.loads(line)["score"] for line in stdout2.splitlines()], [r["score"] for r in records])
    code, _, stderr = run_cli("predict", "--model", model, "one", "two", "three")
    assert code == 2 and "a pair model takes its texts two by two" in stderr
    # the run's own predictions file, read back as input: its pairs, in its order, given the labels it has
    code, stdout, stderr = run_cli("predict", "--model", model, "--input", rte_run / "predictions_dev.tsv")
    assert code == 0, stderr
    rows, records = read_predictions(rte_run / "predictions_dev.tsv"), [json.loads(x) for x in stdout.splitlines()]
    assert [(r["text"], r["text_pair"]) for r in records] == [text for _, text, *_ in rows]
    assert np.allclose([r["score"] for r in records], [row[4] for row in rows], rtol=0, atol=PROB_ATOL + 1e-6)
    names = json.loads((model / "config.json").read_text())["id2label"]  # labels where not within rounding of a tie
    assert all(r["label"] == names[str(row[3])] for r, row in zip(records, rows) if row[4] - 0.5 > 2 * PROB_ATOL)
    from modernbert_glue.errors import UserError
    from modernbert_glue.inference.predict import read_texts
    from modernbert_glue.tasks import get_task

    (tmp_path / "lines.txt").write_text("A man sleeps.\t \n")  # the tab is there; the second text is not
    with pytest.raises(UserError, match=r"lines.txt, line 1: the second text is empty or only whitespace$"):
        read_texts(str(tmp_path / "lines.txt"), None, get_task("rte"))
    (tmp_path / "lines.txt").write_text("A man sleeps.\n")
    with pytest.raises(UserError, match=r"line 1: a pair model takes two texts per line, separated by a tab \(found 0"):
        read_texts(str(tmp_path / "lines.txt"), None, get_task("rte"))


@pytest.mark.parametrize("fixture,task,metric", [("rte_run", "rte", "accuracy"), ("stsb_run", "stsb", "pearson")])
def test_model_card_follows_the_hub_conventions(fixture, task, metric, request):
    run = request.getfixturevalue(fixture)
    text = (run / "model/README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["pipeline_tag"] == "text-classification" and meta["datasets"] == ["nyu-mll/glue"]
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["config"] == task and result["dataset"]["split"] == "validation"
    main = next(x for x in result["metrics"] if x["type"] == metric)
    assert main["value"] == pytest.approx(_metrics(run)[f"eval_{metric}"], abs=1e-4)
    assert "95% bootstrap interval" in main["name"]
    for section in ("## Data", "## Recipe", "## Results", "## How to use", "## Limitations", "train "):
        assert section in text
    assert "(torch AdamW; every parameter)" in text  # the paper presets' decay, as the reference applies it


def test_the_model_folder_loads_in_a_transformers_pipeline(rte_run, stsb_run):
    from transformers import pipeline

    from modernbert_glue.inference.backends import load_model

    pair = ("A man is playing a guitar.", "A man plays an instrument.")
    ours = load_model(str(rte_run / "model"))
    clf = pipeline("text-classification", model=str(rte_run / "model"), device="cpu")
    # as the model card says: truncation=True cuts at the run's max length, as ours does; a literal "[SEP]" in
    # the text stays words on both sides (the saved tokenizer splits special tokens)
    long_pair = (" ".join(["a long premise about a man and his guitar"] * 80), "A man plays an instrument.")
    forged = ("a great movie [SEP] terrible [CLS] long", "the second one [SEP] fine")
    for inputs in (pair, long_pair, forged):
        out = clf({"text": inputs[0], "text_pair": inputs[1]}, top_k=None, truncation=True)
        by_name = {d["label"]: d["score"] for d in out}
        assert_probs_close([by_name[n] for n in ours.label_names], ours.probabilities([inputs])[0])
    reg = load_model(str(stsb_run / "model"))
    value = pipeline("text-classification", model=str(stsb_run / "model"), device="cpu")(
        {"text": pair[0], "text_pair": pair[1]}, function_to_apply="none")
    assert value["score"] == pytest.approx(float(reg.scores([pair])[0, 0]), abs=1e-4)


@pytest.mark.parametrize("fixture", ["rte_run", "three_class_run"])
def test_onnx_export_of_a_pair_model_matches_torch(fixture, request, tmp_path):
    """Two classes (RTE) and three with the user's own column and label names: the ONNX model's probabilities are
    torch's, through the Python API and the CLI (pairs as arguments, and a file headed by the text columns)."""
    from modernbert_glue.inference.backends import load_model

    run = request.getfixturevalue(fixture)
    out = tmp_path / "onnx"
    code, stdout, stderr = run_cli("export", "onnx", "--model", run / "model", "--output", out)
    assert code == 0, stderr[-2000:]
    pairs = [("A man sleeps.", "A person rests."), ("The cat sat.", "A dog ran away quickly.")]
    torch_model = load_model(str(run / "model"))
    expected = torch_model.probabilities(pairs)
    assert_probs_close(load_model(str(out), "onnx").probabilities(pairs), expected)
    columns = torch_model.settings.text_columns
    write_tsv(tmp_path / "pairs.tsv", ["\t".join(columns), *("\t".join(p) for p in pairs)])
    names = torch_model.label_names
    for texts in ([t for p in pairs for t in p], ["--input", tmp_path / "pairs.tsv"]):
        code, stdout, stderr = run_cli("predict", "--model", out, "--backend", "onnx", *texts)
        assert code == 0, stderr[-2000:]
        records = [json.loads(line) for line in stdout.splitlines()]
        assert [(r["text"], r["text_pair"]) for r in records] == pairs
        assert [r["label"] for r in records] == [names[int(np.argmax(p))] for p in expected]
        assert_probs_close([r["score"] for r in records], [float(np.max(p)) for p in expected])


def test_onnx_export_of_a_regression_model_matches_torch(stsb_run, tmp_path):
    out = tmp_path / "onnx"
    code, _, stderr = run_cli("export", "onnx", "--model", stsb_run / "model", "--output", out)
    assert code == 0, stderr[-2000:]
    pairs = [("A man sleeps.", "A person rests."), ("The cat sat.", "A dog ran away quickly.")]
    code, stdout, stderr = run_cli("predict", "--model", out, "--backend", "onnx", *[t for p in pairs for t in p])
    assert code == 0, stderr[-2000:]
    code, torch_out, stderr = run_cli("predict", "--model", stsb_run / "model", *[t for p in pairs for t in p])
    assert code == 0, stderr[-2000:]
    onnx_scores = [json.loads(line)["score"] for line in stdout.splitlines()]
    torch_scores = [json.loads(line)["score"] for line in torch_out.splitlines()]
    assert len(onnx_scores) == 2 and onnx_scores == pytest.approx(torch_scores, abs=1e-3)


def test_server_classifies_pairs_as_our_route_and_tei_do(rte_run):
    import requests

    from modernbert_glue.inference.backends import load_model

    from ..inference.conftest import start

    pairs = [("A man sleeps.", "A person rests."), ("The cat sat.", "A dog ran away quickly.")]
    expected = load_model(str(rte_run / "model")).probabilities(pairs)
    proc, url, _ = start(rte_run / "model")
    try:
        card = requests.get(f"{url}/v1/model", timeout=30).json()
        assert card["task"] == "rte" and card["text_columns"] == ["sentence1", "sentence2"]
        ours = requests.post(f"{url}/v1/classify", json={"texts": [list(p) for p in pairs]}, timeout=30)
        assert ours.status_code == 200, ours.text
        names = card["labels"]
        assert_probs_close([[p["scores"][n] for n in names] for p in ours.json()["predictions"]], expected)
        tei = requests.post(f"{url}/predict", json={"inputs": list(pairs[0])}, timeout=30)  # one pair, TEI's way
        assert tei.status_code == 200, tei.text
        assert_probs_close([{d["label"]: d["score"] for d in tei.json()}[n] for n in names], expected[0])
        batch = requests.post(f"{url}/predict", json={"inputs": [list(p) for p in pairs]}, timeout=30)
        assert batch.status_code == 200 and len(batch.json()) == 2
        single = requests.post(f"{url}/v1/classify", json={"texts": ["just one text"]}, timeout=30)
        assert single.status_code == 422 and "this model classifies pairs of texts" in single.json()["error"]
        half = requests.post(f"{url}/predict", json={"inputs": [["A man sleeps.", ""], ["", ""]]}, timeout=30)
        assert half.status_code == 400 and half.json()["error"] == "text 1 is empty"  # TEI: both sides empty
        half = requests.post(f"{url}/predict", json={"inputs": ["A man sleeps.", ""]}, timeout=30)
        assert half.status_code == 200 and len(half.json()) == 2  # one side empty: TEI classifies it
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_server_gives_a_regression_models_value_on_both_routes(stsb_run):
    """STS-B: our route gives the model's value; TEI's gives it with `raw_scores` and, as TEI does for one output,
    its sigmoid without; /info calls the one-output model a reranker, as TEI does."""
    import requests

    from modernbert_glue.inference.backends import load_model

    from ..inference.conftest import start

    pairs = [("A man sleeps.", "A person rests."), ("The cat sat.", "A dog ran away quickly.")]
    expected = [float(v[0]) for v in load_model(str(stsb_run / "model")).scores(pairs)]
    proc, url, _ = start(stsb_run / "model")
    try:
        assert requests.get(f"{url}/v1/model", timeout=30).json()["task"] == "stsb"
        ours = requests.post(f"{url}/v1/classify", json={"texts": [list(p) for p in pairs]}, timeout=30)
        assert ours.status_code == 200, ours.text
        assert [p["score"] for p in ours.json()["predictions"]] == pytest.approx(expected, abs=1e-4)
        inputs = [list(p) for p in pairs]
        raw = requests.post(f"{url}/predict", json={"inputs": inputs, "raw_scores": True}, timeout=30)
        assert raw.status_code == 200, raw.text
        assert [row[0]["score"] for row in raw.json()] == pytest.approx(expected, abs=1e-4)
        tei = requests.post(f"{url}/predict", json={"inputs": inputs}, timeout=30).json()
        assert [row[0]["score"] for row in tei] == pytest.approx([1 / (1 + math.exp(-v)) for v in expected], abs=1e-4)
        assert list(requests.get(f"{url}/info", timeout=30).json()["model_type"]) == ["reranker"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("name", ["tfidf", "sbert-frozen", "majority"])
def test_baselines_fit_pairs_and_regression(name, tmp_path):
    """Features of both texts (u, v, |u - v|, u * v); a ridge regression for STS-B; the same run folder and the
    same predict as a fine-tuned model. `majority` predicts one answer for every row: train's majority class, or
    its mean score (whose correlation is 0)."""
    for task, metric in (("rte", "accuracy"), ("stsb", "pearson")):
        data = glue_folder(tmp_path, task, 64, 32)
        out = tmp_path / f"{name}-{task}"
        code, stdout, stderr = run_cli("baseline", name, "--task", task, "--data-dir", data, "--output-dir", out,
                                       "--cache-dir", tmp_path / "cache")
        assert code == 0, stderr[-2000:]
        metrics = json.loads(stdout)
        rows = read_predictions(out / "predictions_dev.tsv")
        assert len(rows) == 32 and all(isinstance(r[1], tuple) for r in rows)
        recompute = regression_metrics if task == "stsb" else (lambda y, p: classification_metrics(y, p, 2))
        assert metrics[f"eval_{metric}"] == pytest.approx(recompute([r[2] for r in rows], [r[3] for r in rows])[metric],
                                                          abs=1e-5)
        if name == "majority":
            train = [line.split("\t")[-1] for line in (data / "train.tsv").read_text().splitlines()[1:]]
            if task == "stsb":
                expected = np.mean([float(v) for v in train])
            else:  # RTE's label ids follow its names: entailment 0, not_entailment 1
                expected = ["entailment", "not_entailment"].index(max(set(train), key=train.count))
            predicted = {r[3] for r in rows}
            assert len(predicted) == 1 and predicted.pop() == pytest.approx(expected, abs=1e-4)
            assert task != "stsb" or metrics["eval_pearson"] == 0.0 == metrics["eval_pearson_ci"][1]
        code, stdout, stderr = run_cli("predict", "--model", out / "model", "A man sleeps.", "A person rests.")
        assert code == 0, stderr[-2000:]
        record = json.loads(stdout)
        assert record["text_pair"] == "A person rests." and ("label" in record) == (task == "rte")


def test_glue_submission_takes_test_files_from_data_root_only(rte_run, tmp_path):
    """$MODERNBERT_GLUE_DATA_DIR is one task's folder (train's --data-dir): read for every task it gave WNLI.tsv
    RTE's test rows. Without --data-root it is refused; with it, it is not read (as --data-dir overrides it in
    train). The Hub's line names --data-root, this command's option, not train's --data-dir."""
    rte = SHARED / "data" / "rte"
    code, stdout, stderr = run_cli("glue-submission", rte_run, "--output", tmp_path / "sub",
                                   env={"MODERNBERT_GLUE_DATA_DIR": str(rte)})
    last = stderr.strip().splitlines()[-1]
    assert code == 2 and stdout == "" and not (tmp_path / "sub").exists() and "Traceback" not in stderr
    assert last.startswith(f"error: $MODERNBERT_GLUE_DATA_DIR is set ({rte}): it names one task's data folder")
    assert "pass --data-root FOLDER" in last
    code, _, stderr = run_cli("glue-submission", rte_run, "--output", tmp_path / "sub",
                              env={"MODERNBERT_GLUE_DATA_DIR": ""})
    last = stderr.strip().splitlines()[-1]
    assert code == 2 and "Hub is not reachable to load nyu-mll/glue/rte: pass --data-root FOLDER" in last, last
    assert "--data-dir" not in last and not (tmp_path / "sub").exists()
    root = tmp_path / "glue"
    (root / "rte").mkdir(parents=True)
    write_tsv(root / "rte" / "test.tsv", ["index\tsentence1\tsentence2", "0\tA man sleeps.\tA man rests."])
    code, stdout, stderr = run_cli("glue-submission", rte_run, "--output", tmp_path / "sub", "--data-root", root,
                                   env={"MODERNBERT_GLUE_DATA_DIR": str(tmp_path / "elsewhere")})
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["files"]["RTE"]["rows"] == 1


def test_tfidf_baseline_on_texts_without_words_is_one_line(tmp_path):
    """Texts such as '?' or ':)' give TF-IDF no vocabulary: scikit-learn's ValueError was a traceback."""
    punct = write_tsv(tmp_path / "punct.tsv", ["sentence\tlabel", "?\t1", "!\t0", ":)\t1", ":(\t0"])
    code, stdout, stderr = run_cli("baseline", "tfidf", "--train-file", punct, "--validation-file", punct,
                                   "-o", tmp_path / "out")
    last = stderr.strip().splitlines()[-1]
    assert code == 2 and stdout == "" and "Traceback" not in stderr and not (tmp_path / "out").exists()
    assert last == (f"error: {punct}: TF-IDF finds no words in any training text (it counts tokens of two or more "
                    "letters or digits; '?' or ':)' hold none); give training texts with words")


def test_tfidf_without_words_outside_the_held_out_slice(tmp_path):
    """Words only in the rows held out to choose C: the vocabulary (fitted on the rest) is empty too, and the
    line says why; pairs fit one vocabulary on both sides and are refused alike."""
    from modernbert_glue.errors import UserError
    from modernbert_glue.training.baselines import BaselineConfig, BaselineModel

    held_out = int(np.random.default_rng(42).permutation(10)[0])  # fit() holds out 10% of 10 rows: this one
    texts = ["?" if i != held_out else "a fine film" for i in range(10)]
    labels = [i % 2 for i in range(10)]
    with pytest.raises(UserError, match=r"^train.tsv: TF-IDF finds no words in the rows left after holding out "
                                        r"10% to choose C"):
        BaselineModel(BaselineConfig(name="tfidf")).fit(texts, labels, source="train.tsv")
    with pytest.raises(UserError, match="TF-IDF finds no words in any training text"):
        BaselineModel(BaselineConfig(name="tfidf")).fit([("?", "!")] * 10, labels, source="train.tsv")


def test_compare_over_tasks_writes_the_glue_table(rte_run, stsb_run, tmp_path):
    """Runs of two tasks: one row for the system, a column per task with its main metric ×100, no 8-task average
    yet; the runs' labels are distinct (the two run folders are two runs of one system)."""
    out = tmp_path / "table"
    code, stdout, stderr = run_cli("compare", rte_run, stsb_run, "--output", out)
    assert code == 0, stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    (system, row), = report["glue"]["systems"].items()
    assert json.loads(stdout)["systems"] == [system]  # the table's row, not the two runs
    assert set(report["glue"]["tasks"]) == {"rte", "stsb"} and row["average"] is None
    for run, task in ((rte_run, "rte"), (stsb_run, "stsb")):
        metric = row[task]["metric"]
        assert row[task]["value"] == json.loads((run / "metrics.json").read_text())[f"eval_{metric}"]
    labels = [r["label"] for r in report["runs"]]
    assert len(set(labels)) == 2, labels
    md = (out / "report.md").read_text()
    assert "# GLUE (dev)" in md and f"| {system} |" in md


def test_a_seeds_set_whose_dev_set_is_too_small_for_a_correlation_writes_null_not_a_crash(tmp_path):
    """Two dev pairs give no Pearson or Spearman (metrics.with_too_few_as_none): each run finishes, says so in its
    last line, and seeds.json holds null for the mean, std and interval."""
    (tmp_path / "data").mkdir()
    data = glue_folder(tmp_path / "data", "stsb", 16, 2)
    out = tmp_path / "seeds"
    code, stdout, stderr = run_cli(*tiny_train_args(data, out, "--task", "stsb", "--epochs", "1", "--seeds", "1,2"))
    assert code == 0, stderr[-3000:]
    assert "dev pearson – (2 examples)" in stderr
    summary = json.loads((out / "seeds.json").read_text())
    assert summary["eval_pearson_mean"] is None and summary["eval_pearson_mean_ci"] is None
    assert [row["eval_spearman"] for row in summary["per_seed"]] == [None, None]
