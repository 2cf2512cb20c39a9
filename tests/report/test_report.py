import json
import re
import shutil
from pathlib import Path

import pytest

from modernbert_glue.report import Run, architecture

from ..conftest import MODERNBERT, TINY_ARGS, run_cli


@pytest.fixture(scope="session")
def tfidf_run(small_sst2, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tfidf"
    code, stdout, stderr = run_cli("baseline", "tfidf", "--data-dir", small_sst2, "--output-dir", out)
    assert code == 0, stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def seeds_run(small_sst2, tmp_path_factory):
    """Two seeds of the tiny model, evaluated on the first 80 dev rows only (a subset of the same split)."""
    out = tmp_path_factory.mktemp("runs") / "seeds"
    code, stdout, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
                                   "--max-train-samples", "64", "--max-eval-samples", "80", "--epochs", "1",
                                   "--batch-size", "32", "--seeds", "1,2", "--output-dir", out)
    assert code == 0, stderr[-2000:]
    return out


def test_tfidf_baseline_writes_a_run_folder_that_predict_uses(tfidf_run, small_sst2):
    metrics = json.loads((tfidf_run / "metrics.json").read_text())
    assert metrics["preset"] == "baseline:tfidf" and metrics["eval_samples"] == 160
    assert metrics["C"] in (0.1, 0.3, 1.0, 3.0, 10.0, 30.0) and metrics["eval_accuracy"] > 0.5
    for name in ("run.json", "predictions_dev.tsv", "analysis_dev.json", "model/baseline.joblib"):
        assert (tfidf_run / name).is_file(), name
    code, stdout, _ = run_cli("predict", "--model", tfidf_run / "model", "a wonderful , moving film", "dull and tedious")
    assert code == 0 and [json.loads(x)["text"] for x in stdout.splitlines()] == ["a wonderful , moving film", "dull and tedious"]
    code, stdout, _ = run_cli("evaluate", "--model", tfidf_run / "model", "--data-dir", small_sst2)
    assert json.loads(stdout)["accuracy"] == pytest.approx(metrics["eval_accuracy"])
    code, stdout, stderr = run_cli("evaluate", "--model", tfidf_run, "--data-dir", small_sst2)  # the run folder
    assert code == 0 and json.loads(stdout)["accuracy"] == pytest.approx(metrics["eval_accuracy"]), stderr
    from modernbert_glue.inference.serve import ServeConfig, load_served_model

    served = load_served_model(ServeConfig(model=str(tfidf_run / "model")))  # serve's defaults: bf16 auto
    assert served.settings.task == "sst2"
    for option in (("--input-path", "packed"), ("--bf16", "on")):  # ignored before, as with an export refused
        code, _, stderr = run_cli("predict", "--model", tfidf_run, *option, "a wonderful film")
        assert code == 2 and stderr.strip().splitlines()[-1] == (
            f"error: --input-path and --bf16 go with a fine-tuned transformer; {tfidf_run / 'model'} is a "
            "baseline's scikit-learn model"), stderr
    code, _, stderr = run_cli("export", "onnx", "--model", tfidf_run, "--output", tfidf_run.parent / "onnx")
    assert code == 2 and "a baseline's scikit-learn model" in stderr and not (tfidf_run.parent / "onnx").exists()
    for model in ([], ["--model", MODERNBERT]):  # with --model, the refusal said to drop it, then the load failed
        code, _, stderr = run_cli("train", "--init-from", tfidf_run, *model, "--data-dir", small_sst2, "--check",
                                  "--output-dir", tfidf_run.parent / "warm")
        assert code == 2 and stderr.strip().splitlines()[-1] == (
            f"error: --init-from {tfidf_run / 'model'}: a baseline's scikit-learn model; only a fine-tuned "
            "transformer's weights can start a run")


def test_sbert_frozen_baseline_caches_embeddings(small_sst2, tmp_path):
    cache = tmp_path / "cache"
    args = ["baseline", "sbert-frozen", "--data-dir", small_sst2, "--cache-dir", cache]
    code, stdout, stderr = run_cli(*args, "--output-dir", tmp_path / "a")
    assert code == 0, stderr[-2000:]
    first = json.loads(stdout)
    cached = sorted(cache.glob("*.npy"))
    assert cached and first["model"] == "sbert-frozen:sentence-transformers/all-MiniLM-L6-v2"
    assert first["eval_accuracy"] > 0.6  # pretrained sentence embeddings carry sentiment
    code, stdout, _ = run_cli(*args, "--output-dir", tmp_path / "b")
    assert code == 0 and sorted(cache.glob("*.npy")) == cached  # reused, not recomputed
    assert json.loads(stdout)["eval_accuracy"] == first["eval_accuracy"]


def test_seeds_summary(seeds_run):
    summary = json.loads((seeds_run / "seeds.json").read_text())
    per_seed = [json.loads((seeds_run / f"seed-{s}" / "metrics.json").read_text()) for s in (1, 2)]
    assert summary["seeds"] == [1, 2] and [p["seed"] for p in per_seed] == [1, 2]
    accs = [p["eval_accuracy"] for p in per_seed]
    assert summary["eval_accuracy_mean"] == pytest.approx(sum(accs) / 2)
    assert summary["eval_accuracy_std"] == pytest.approx(abs(accs[0] - accs[1]) / 2 ** 0.5)
    low, high = summary["eval_accuracy_mean_ci"]
    assert "train_seconds_mean" in summary and "train_seconds_mean_ci" not in summary  # it went below 0
    assert low <= summary["eval_accuracy_mean"] <= high


def test_compare_report_matches_the_runs(tiny_run, tfidf_run, seeds_run, tmp_path):
    out = tmp_path / "report"
    code, stdout, stderr = run_cli("compare", tiny_run, tfidf_run, seeds_run, "--output", out)
    assert code == 0, stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert len(report["runs"]) == 4  # the seeds folder expands to its two runs
    md = (out / "report.md").read_text()
    for run in report["runs"]:
        on_disk = json.loads((__import__("pathlib").Path(run["folder"]) / "metrics.json").read_text())
        assert run["metrics"] == on_disk
        assert f"| {run['label']} | {on_disk['eval_samples']} | {100 * on_disk['eval_accuracy']:.2f} |" in md
    # subsets of one split are paired on the rows they share
    pairs = {(p["a"], p["b"]): p for p in report["pairwise"]["dev"]}
    assert any(p["n"] == 80 for p in pairs.values()) and any(p["n"] == 160 for p in pairs.values())
    from modernbert_glue.evaluation.metrics import holm  # each p adjusted over the six pairs tested together

    for key, p in (("main_metric", "p"), ("mcnemar", "p_exact")):
        raw = [t[key][p] for t in report["pairwise"]["dev"]]
        assert len(raw) == 6 and [t[key]["p_holm"] for t in report["pairwise"]["dev"]] == holm(raw)
    # every p report.json holds is one of those two, shown and adjusted (an accuracy bootstrap was neither)
    assert all(set(t) == {"a", "b", "n", "main_metric", "accuracy_a", "accuracy_b", "mcnemar"}
               for t in report["pairwise"]["dev"])
    assert "6 pairs tested; each Holm p is its column's p adjusted" in md and "| Holm p |" in md
    assert "## SST-2 dev" in md  # as GLUE prints the name (it was "SST2")
    tiny = json.loads((tiny_run / "metrics.json").read_text())  # 3 epochs; the rate was over HF's shorter clock
    assert tiny["train_samples_per_second"] == pytest.approx(3 * tiny["train_samples"] / tiny["train_seconds"], rel=0.02)
    assert "**Not one set of examples:** these runs were scored on different numbers of them (n 80, 160" in md
    arch = {a["system"]: a for a in report["architecture"]}
    assert len(arch) == 3 and all(a["weights"] == "random weights" for a in arch.values())
    tiny = next(iter(arch.values()))
    assert (tiny["layers"], tiny["hidden_size"], tiny["vocab_size"], tiny["tokenizer"]) == (2, 64, 50368, "BPE")
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "<table>" in html  # dev: accuracy, reliability, length; speed
    assert "<strong>Not one set of examples:</strong>" in html and "<code>modernbert-glue compare</code>" in html
    assert "**" not in html and "`" not in html  # the blocks' markdown, rendered (it showed as typed)
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html), "report.html must be self-contained"
    assert "http://" not in html and "https://" not in html


def test_two_seeds_folders_of_one_model_get_distinct_labels(seeds_run, tmp_path):
    """Every seed's folder is called seed-N: the --seeds folder's name, then its path, tells two sets apart in the
    tables, the pairwise tests and the seed summaries."""
    for first, second in (("lr-high", "lr-low"), ("one/seeds", "two/seeds")):
        for name in (first, second):
            shutil.copytree(seeds_run, tmp_path / name)
        out = tmp_path / f"report-{first.replace('/', '-')}"
        code, _, stderr = run_cli("compare", tmp_path / first, tmp_path / second, "--output", out)
        assert code == 0, stderr[-2000:]
        report = json.loads((out / "report.json").read_text())
        labels = [r["label"] for r in report["runs"]]
        tiny = "modernbert-base (L2, H64, A2, intermediate_size=128) random weights"  # the TINY overrides
        assert len(set(labels)) == 4 and all(label.startswith(f"{tiny} (seed ") for label in labels)
        assert labels[0].endswith(f"[{first}]" if "/" not in first else f"[{tmp_path / first}]"), labels
        assert len({s["label"] for s in report["seeds"]}) == 2
        assert len({(p["a"], p["b"]) for p in report["pairwise"]["dev"]}) == 6


def test_compare_refuses_different_splits(tiny_run, small_sst2, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    preds = (other / "predictions_dev.tsv").read_text().splitlines()
    first = preds[1].split("\t")
    first[1] = "a sentence from another split"
    (other / "predictions_dev.tsv").write_text("\n".join([preds[0], "\t".join(first), *preds[2:]]) + "\n")
    code, stdout, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / "r")
    assert code == 2 and "were evaluated on different dev data (row 0" in stderr and stdout == ""


def test_compare_refuses_different_label_sets(tiny_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    config = json.loads((other / "model/config.json").read_text())
    config["id2label"] = {"0": "bad", "1": "good"}
    (other / "model/config.json").write_text(json.dumps(config))
    code, _, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / "r")
    assert code == 2 and "different label sets" in stderr


def test_compare_refuses_to_write_into_a_run_it_reads(tiny_run, seeds_run, tmp_path):
    """`--output RUN/report` wrote a report folder into the run (and that run's --overwrite then refused)."""
    for run, output in ((tiny_run, tiny_run / "report"), (seeds_run, seeds_run / "seed-1" / "r")):
        code, stdout, stderr = run_cli("compare", tiny_run, seeds_run, "--output", output)
        assert code == 2 and not output.exists(), stderr[-800:]
        assert stderr.strip().splitlines()[-1] == (f"error: --output {output}: inside the run folder {run}; write the "
                                                   "report beside the runs")


def test_compare_refuses_a_run_given_twice(tiny_run, seeds_run, tmp_path):
    for twice in ((tiny_run, tiny_run), (seeds_run, seeds_run / "seed-1")):  # also inside a --seeds folder
        code, _, stderr = run_cli("compare", *twice, "--output", tmp_path / "r")
        assert code == 2 and "given twice" in stderr and not (tmp_path / "r").exists()


def test_compare_names_a_damaged_model_file_in_one_line(tiny_run, tmp_path):
    for name, content, message in (("config.json", b'{"hidden_size": ', "config.json: not valid JSON"),
                                   ("tokenizer.json", b"\xff\xfe{", "tokenizer.json: not valid UTF-8"),
                                   ("config.json", b"[1]", "config.json: not a JSON object"),
                                   ("model.safetensors", b"", "model.safetensors: not a readable safetensors file")):
        other = tmp_path / f"{name}-{len(content)}"
        shutil.copytree(tiny_run, other)
        (other / "model" / name).write_bytes(content)
        code, _, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / f"r-{other.name}")
        assert code == 2 and message in stderr.strip().splitlines()[-1] and "Traceback" not in stderr, stderr[-800:]
        assert not (tmp_path / f"r-{other.name}").exists()


def test_architecture_of_the_real_configs(tmp_path):
    """ModernBERT-base (transformers 5 config with layer_types) and all-MiniLM-L6-v2, read from their files."""
    from transformers import AutoConfig

    from modernbert_glue.models import packaged_copy

    rows = {}
    for name, source in (("modernbert", MODERNBERT), ("minilm", packaged_copy("sentence-transformers/all-MiniLM-L6-v2"))):
        folder = tmp_path / name / "model"
        AutoConfig.from_pretrained(source).save_pretrained(folder)
        shutil.copy(source / "tokenizer.json", folder / "tokenizer.json")
        start = {"init_from": "/runs/mnli-seeds/seed-1/model"} if name == "minilm" else {}  # a warm start
        rows[name] = architecture(Run(folder=tmp_path / name, metrics={"random_init": name == "modernbert", **start},
                                      run={}, label=name))
    mb, ml = rows["modernbert"], rows["minilm"]
    assert ml["weights"] == "pretrained, fine-tuned; warm start from mnli-seeds/seed-1/model"
    assert (mb["layers"], mb["hidden_size"], mb["vocab_size"], mb["max_positions"]) == (22, 768, 50368, 8192)
    assert mb["attention"] == ("global in layers 1, 4, 7, 10, 13, 16, 19, 22 (every 3rd from the first), sliding "
                               "window 128 otherwise") and mb["tokenizer"] == "BPE"
    assert mb["weights"] == "random weights" and mb["pooling"].startswith("mean")
    assert (ml["layers"], ml["hidden_size"], ml["vocab_size"], ml["max_positions"]) == (6, 384, 30522, 512)
    assert ml["tokenizer"] == "WordPiece" and ml["attention"] == "global (full) in every layer"


# (a change to a run's metrics.json, a substring of the one line compare prints)
WRONG_METRICS = [
    ({"eval_accuracy": "high"}, "metrics.json: 'eval_accuracy' must be a finite number or null, got \"high\""),
    ({"eval_mcc": True}, "'eval_mcc' must be a finite number or null, got true"),
    ({"eval_ece": "x"}, "'eval_ece' must be a finite number or null"),
    # NaN printed `nan` in the table and its means; no writer of a finished run stores one
    ({"eval_accuracy": float("nan")}, "'eval_accuracy' must be a finite number or null, got NaN"),
    ({"test_f1": float("inf")}, "'test_f1' must be a finite number or null, got Infinity"),
    ({"eval_accuracy_ci": [float("nan"), 0.5]}, "'eval_accuracy_ci' must be an interval [low, high] of two finite"),
    ({"train_seconds": "x"}, "'train_seconds' must be a number or null"),
    ({"peak_memory_mb": "x"}, "'peak_memory_mb' must be a number or null"),
    ({"infer_sentences_per_second": "x"}, "'infer_sentences_per_second' must be a number or null"),
    ({"eval_accuracy_ci": [1]}, "'eval_accuracy_ci' must be an interval [low, high] of two finite numbers, or null, "
                                "got [1]"),
    ({"eval_accuracy_ci": "x"}, "'eval_accuracy_ci' must be an interval [low, high]"),
    ({"task": 5}, "'task' must be a task name (cola, sst2,"),  # was a second "task": the GLUE table
    ({"task": [1]}, "'task' must be a task name"),
    ({"main_metric": "nosuch"}, "'main_metric' must be a metric name (accuracy, f1,"),
    ({"main_metric": "pearson"}, "no 'eval_pearson' (the dev pearson, the main metric"),
]


def test_compare_names_a_wrong_typed_metric_in_one_line(tiny_run, tmp_path):
    """Every value of metrics.json the report computes with or prints is checked: a wrong type stopped compare in
    numpy or in a format string, and a task that is not a name switched it to the GLUE table."""
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    original = json.loads((other / "metrics.json").read_text())
    failures = []
    for i, (change, message) in enumerate(WRONG_METRICS):
        (other / "metrics.json").write_text(json.dumps({**original, **change}))
        out = tmp_path / f"r{i}"
        code, stdout, stderr = run_cli("compare", tiny_run, other, "--output", out)
        last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
        if code != 2 or "Traceback" in stderr or out.exists() or stdout or not last.startswith("error: ") \
                or message not in last or str(other / "metrics.json") not in last:
            failures.append(f"{change}: exit {code}, last line {last!r}")
    assert not failures, "\n".join(failures)
    # null intervals and timings are accepted, shown as "–" (a missing ECE too, never as a perfect 0.0000)
    changed = {**original, "eval_accuracy_ci": None, "train_seconds": None}
    del changed["eval_ece"]
    (other / "metrics.json").write_text(json.dumps(changed))
    code, _, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / "accepted")
    assert code == 0, stderr[-2000:]
    row = next(line for line in (tmp_path / "accepted" / "report.md").read_text().splitlines()
               if line.startswith("| ") and "[other]" in line)
    assert row.split(" | ")[3] == "–" and row.endswith("| – |"), row


def _edit_prediction(folder, row: int, column: int, value: str):
    path = folder / "predictions_dev.tsv"
    lines = path.read_text().splitlines()
    fields = lines[row + 1].split("\t")
    fields[column] = value
    lines[row + 1] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n")


def test_compare_says_what_differs_between_two_runs_rows(tiny_run, tmp_path):
    """A label alone differing showed the one sentence twice; two sentences alike in their first 40 characters
    looked the same too."""
    other = tmp_path / "label"
    shutil.copytree(tiny_run, other)
    _, sentence, label, *_ = (tiny_run / "predictions_dev.tsv").read_text().splitlines()[2].split("\t")
    _edit_prediction(other, 1, 2, str(1 - int(label)))
    code, _, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / "r1")
    assert code == 2 and not (tmp_path / "r1").exists()
    assert (f"(row 1: the same text {sentence[:40]!r} with label {label} vs {1 - int(label)})"
            in stderr.strip().splitlines()[-1]), stderr[-500:]
    other = tmp_path / "sentence"
    shutil.copytree(tiny_run, other)
    sentence = (tiny_run / "predictions_dev.tsv").read_text().splitlines()[1].split("\t")[1]
    assert len(sentence) > 45
    _edit_prediction(other, 0, 1, sentence[:-3] + "XYZ")
    code, _, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / "r2")
    last = stderr.strip().splitlines()[-1]
    assert code == 2 and "(row 0: sentence '..." in last and "XYZ'" in last and f"{sentence[-3:]}'" in last, last


def test_compare_a_run_kept_without_its_model_folder(tiny_run, tmp_path):
    """benchmarks/results/ keeps run folders without their model: a GLUE task's label names are the task's, so such
    a run compares with a whole one (it said "different label sets ((...) vs ())"); a custom task's names were
    saved only in the model folder, and the line says that it is missing."""
    stripped = tmp_path / "stripped"
    shutil.copytree(tiny_run, stripped)
    shutil.rmtree(stripped / "model")
    code, _, stderr = run_cli("compare", tiny_run, stripped, "--output", tmp_path / "r")
    assert code == 0, stderr[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert len(report["runs"]) == 2 and len(report["architecture"]) == 1
    for folder in (stripped, tmp_path / "whole"):
        if not folder.exists():
            shutil.copytree(tiny_run, folder)
        metrics = json.loads((folder / "metrics.json").read_text())
        (folder / "metrics.json").write_text(json.dumps({**metrics, "task": "custom"}))
    code, _, stderr = run_cli("compare", tmp_path / "whole", stripped, "--output", tmp_path / "r2")
    last = stderr.strip().splitlines()[-1]
    assert code == 2 and f"{stripped / 'model'}: not found; it holds the label names of a custom run" in last, last
    assert not (tmp_path / "r2").exists()


@pytest.mark.parametrize("field, value, message", [
    ("seeds", "1,2", "'seeds' must be a non-empty list of whole numbers, got \"1,2\""),
    ("seeds", [1, 3], "'per_seed' must hold one object per seed in 'seeds' ([1, 3]), each with its 'seed'"),
    ("per_seed", [{"seed": 1}, {"seed": 2}, {}], "'per_seed' must hold one object per seed in 'seeds' ([1, 2])"),
    ("per_seed", [{"seed": 1, "eval_accuracy": "0.5"}, {"seed": 2}],
     "'per_seed' seed 1: 'eval_accuracy' must be a number or null, got \"0.5\""),
    ("main_metric", ["accuracy"], "'main_metric' must be a metric's name, got [\"accuracy\"]"),
    ("eval_accuracy_mean", None, "'eval_accuracy_mean' must be a number, got null"),
])
def test_a_seeds_summary_edited_by_hand_is_one_line(seeds_run, tmp_path, field, value, message):
    """compare and glue-submission read seeds.json's fields unchecked: a KeyError or TypeError traceback."""
    other = tmp_path / "seeds"
    shutil.copytree(seeds_run, other)
    summary = json.loads((other / "seeds.json").read_text())
    (other / "seeds.json").write_text(json.dumps({**summary, field: value}))
    for argv in (["compare", other, "--output", tmp_path / "r"],
                 ["glue-submission", other, "--output", tmp_path / "r", "--data-root", tmp_path]):
        code, stdout, stderr = run_cli(*argv)
        assert code == 2 and stdout == "" and "Traceback" not in stderr, stderr[-800:]
        assert stderr.strip().splitlines()[-1].startswith(f"error: {other}/seeds.json: {message}")
        assert not (tmp_path / "r").exists()


def test_embedding_cache_key_follows_the_encoders_weights(tmp_path):
    """The key was the encoder's name, folder and texts: weights changed in place (a folder trained again) were
    answered from the cache with the old encoder's embeddings."""
    import os

    from modernbert_glue.training.baselines import Embedder

    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    embedder = object.__new__(Embedder)  # the key needs no loaded model
    embedder.name, embedder.path = str(folder), str(folder)
    key = embedder.cache_key(["a", "b"])
    assert embedder.cache_key(["a", "b"]) == key and embedder.cache_key(["a"]) != key
    (folder / "config.json").write_text('{"x": 1}')  # not a weight
    assert embedder.cache_key(["a", "b"]) == key
    stat = (folder / "model.safetensors").stat()
    os.utime(folder / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert embedder.cache_key(["a", "b"]) != key


def test_one_seed_has_no_spread_not_a_spread_of_zero(tmp_path):
    """seeds.json of a one-seed set: std null, read back and shown as "–" (0.00 would read as no variance)."""
    from modernbert_glue.evaluation.runfolder import read_seeds_summary
    from modernbert_glue.report.render import _seed_blocks

    summary = {"seeds": [7], "main_metric": "accuracy", "eval_accuracy_mean": 0.7, "eval_accuracy_std": None,
               "eval_accuracy_mean_ci": None, "per_seed": [{"seed": 7, "eval_accuracy": 0.7}]}
    (tmp_path / "seeds.json").write_text(json.dumps(summary))
    assert read_seeds_summary(tmp_path)["eval_accuracy_std"] is None
    text = _seed_blocks({**summary, "label": "m", "folder": "runs/m"})[0].text
    assert "dev accuracy 70.00 ± – (mean ± sample std, n − 1), 95% t-interval of the mean –" in text
    (tmp_path / "seeds.json").write_text(json.dumps({**summary, "seeds": [7, 8], "per_seed": [
        {"seed": 7, "eval_accuracy": 0.7}, {"seed": 8, "eval_accuracy": 0.7}]}))
    from modernbert_glue.errors import UserError

    with pytest.raises(UserError, match="eval_accuracy_std"):  # two seeds have a spread
        read_seeds_summary(tmp_path)


def test_a_set_only_a_later_run_has_gets_its_reliability_figure(tiny_run, small_sst2, tmp_path):
    """The figure was drawn only when the first run listed had the set: report.md linked a file never written,
    and report.html showed an empty image."""
    labelled = tmp_path / "test_labeled.tsv"
    labelled.write_text("\n".join((small_sst2 / "dev.tsv").read_text().splitlines()[:41]) + "\n")
    tfidf = tmp_path / "tfidf"
    code, _, stderr = run_cli("baseline", "tfidf", "--data-dir", small_sst2, "--test-file", labelled, "--output-dir", tfidf)
    assert code == 0, stderr[-2000:]
    out = tmp_path / "report"
    code, _, stderr = run_cli("compare", tiny_run, tfidf, "--output", out)
    assert code == 0, stderr[-2000:]
    assert "![reliability](reliability_test.png)" in (out / "report.md").read_text()
    assert (out / "reliability_test.png").stat().st_size > 1000
    assert 'src="data:image/png;base64,"' not in (out / "report.html").read_text()


def test_a_bootstrap_p_of_zero_is_shown_as_the_bound_the_resamples_resolve():
    from modernbert_glue.report.render import _bootstrap_p

    assert (_bootstrap_p(0.0), _bootstrap_p(0.0, tests=6), _bootstrap_p(0.0, tests=900)) == ("< 0.002", "< 0.012", "< 1")
    assert _bootstrap_p(0.034) == "0.0340"


def test_report_html_renders_its_own_markdown_and_escapes_everything_else():
    from modernbert_glue.report.render import _inline_markdown

    assert str(_inline_markdown("**a** `b` <script>alert(1)</script> 2*3")) == (
        "<strong>a</strong> <code>b</code> &lt;script&gt;alert(1)&lt;/script&gt; 2*3")


def test_report_json_is_strict_json_even_with_a_nan_metric():
    """A hand-edited metrics.json may hold NaN: report.json held a bare NaN, which JSON.parse refuses."""
    from modernbert_glue.report import strict_json

    value = {"metrics": {"eval_accuracy": float("nan"), "n": 3, "ci": [float("inf"), 0.5]}, "label": "a"}
    assert strict_json(value) == {"metrics": {"eval_accuracy": None, "n": 3, "ci": [None, 0.5]}, "label": "a"}
    json.loads(json.dumps(strict_json(value), allow_nan=False))


def test_compare_names_a_damaged_analysis_file_in_one_line(tiny_run, tmp_path):
    """An analysis_dev.json of {} stopped compare in a KeyError traceback while drawing the length figure."""
    for i, content in enumerate(("{}", '{"accuracy_by_length": [], "calibration": {"ece": 0.1, "bins": [{}]}}')):
        other = tmp_path / f"other{i}"
        shutil.copytree(tiny_run, other)
        (other / "analysis_dev.json").write_text(content)
        code, stdout, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / f"r{i}")
        last = stderr.strip().splitlines()[-1]
        assert code == 2 and stdout == "" and "Traceback" not in stderr, stderr[-800:]
        assert last.startswith(f"error: {other / 'analysis_dev.json'}: '"), last
        assert not (tmp_path / f"r{i}").exists()


def test_compare_shows_a_metric_too_few_examples_left_null_as_a_dash(tiny_run, tmp_path):
    """metrics.json holds null where too few examples give a value (its main metric too): the table shows "–",
    the figure leaves the run out, and nothing stops on it."""
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    metrics = json.loads((other / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**metrics, "eval_accuracy": None, "eval_accuracy_ci": None}))
    code, _, stderr = run_cli("compare", tiny_run, other, "--output", tmp_path / "r")
    assert code == 0, stderr[-2000:]
    row = next(line for line in (tmp_path / "r" / "report.md").read_text().splitlines()
               if line.startswith("| ") and "[other]" in line)
    assert row.split(" | ")[2:4] == ["–", "–"], row


def test_a_resumed_runs_train_time_is_marked_as_its_last_launchs_and_a_missing_value_is_a_dash():
    """train_seconds and the rate of a resumed run cover the launch that finished it, while train sentences are the
    whole set: unmarked, the row read as 512 sentences in 8.89 s at 27 sentences/s."""
    from modernbert_glue.report import Run, speed_rows

    speeds = {"train_samples": 512, "train_seconds": 8.89, "train_samples_per_second": 27.01}
    fresh = Run(folder=Path("/runs/a"), metrics=speeds, run={}, label="a")
    resumed = Run(folder=Path("/runs/b"), metrics={**speeds, "resumed_from_step": 17}, run={}, label="b")
    assert speed_rows([fresh])[0][1:4] == [512, 8.89, 27.01]
    from modernbert_glue.report.render import _table
    assert _table(["a", "b"], [[None, 1]]).rows == [["–", "1"]]  # a missing value (no weights to count): not "None"
    assert speed_rows([resumed])[0][1:4] == [512, "8.89 (from step 17)", "27.01 (from step 17)"]
    from modernbert_glue.report.render import _seed_seconds
    seed = Run(folder=Path("/runs/s/seed-2"), metrics={**speeds, "seed": 2, "resumed_from_step": 17}, run={},
               label="s", seeds_folder=Path("/runs/s"))
    assert _seed_seconds({"seed": 2, "train_seconds": 8.89}, {"folder": "/runs/s"}, [seed]) == "8.89 (from step 17)"
    assert _seed_seconds({"seed": 1, "train_seconds": 9.5}, {"folder": "/runs/s"}, [seed]) == 9.5  # (the seeds table)
    # a checkpoint that recorded the seconds before it: train_seconds is the whole training's, the rate the launch's
    whole = Run(folder=Path("/runs/c"), metrics={**speeds, "resumed_from_step": 17, "train_seconds_before": 4.0},
                run={}, label="c")
    assert speed_rows([whole])[0][1:4] == [512, 8.89, "27.01 (from step 17)"]


def test_a_runs_model_sizes_name_it_and_a_damaged_record_is_one_line(tiny_run, tmp_path):
    """metrics.json's model_sizes (the TINY overrides) name the system; a run written before they were recorded
    takes its own from run.json's config; a value that is not an object is one line naming the field."""
    from modernbert_glue.errors import UserError
    from modernbert_glue.report.runs import load_runs

    (run,), _ = load_runs([str(tiny_run)])
    assert run.label.startswith("modernbert-base (L2, H64, A2, intermediate_size=128) random weights")
    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    metrics = json.loads((old / "metrics.json").read_text())
    (old / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "model_sizes"}))
    (legacy,), _ = load_runs([str(old)])
    assert legacy.label == run.label and legacy.metrics["model_sizes"] == metrics["model_sizes"]
    (old / "metrics.json").write_text(json.dumps({**metrics, "model_sizes": [2]}))
    with pytest.raises(UserError, match=r"metrics.json: 'model_sizes' must be an object of the model's size "):
        load_runs([str(old)])


def test_a_hand_damaged_run_folder_is_one_line_in_compare(tiny_run, tmp_path):
    """Each stopped compare in a traceback (an adversarial walk): a folder where metrics.json should be, an integer
    past json's digit limit, an accuracy of 7.5 (750.0 in the GLUE table; matplotlib's error in the figures), a
    reversed interval, id2label keys that are no ids, a byte that is not UTF-8 in the predictions; a null
    calibration (the check lets it pass) is a run without a reliability curve."""
    from modernbert_glue.errors import UserError
    from modernbert_glue.report import compare

    original = json.loads((tiny_run / "metrics.json").read_text())
    damages = [
        ("metrics.json", "folder", "metrics.json: a folder, not a file"),
        ("metrics.json", '{"task": ' + "9" * 5000 + "}", "metrics.json: not valid JSON (Exceeds the limit"),
        ("metrics.json", "[" * 100000 + "]" * 100000, "metrics.json: not valid JSON (maximum recursion depth"),
        ("metrics.json", {**original, "eval_accuracy": 7.5}, "'eval_accuracy' must be a number from 0 to 1, got 7.5"),
        ("metrics.json", {**original, "eval_accuracy_ci": [0.9, 0.1]}, "'eval_accuracy_ci' must be an interval [low, "),
        ("model/config.json", {**json.loads((tiny_run / "model" / "config.json").read_text()),
                               "id2label": {"a": "negative", "b": "positive"}}, "config.json: 'id2label' must be an"),
        ("predictions_dev.tsv", b"\xe9", "predictions_dev.tsv, line 3: not valid UTF-8"),
    ]
    for i, (name, damage, message) in enumerate(damages):
        other = tmp_path / f"other{i}"
        shutil.copytree(tiny_run, other)
        path = other / name
        if damage == "folder":
            path.unlink()
            path.mkdir()
        elif isinstance(damage, bytes):  # one byte into the second row
            lines = path.read_bytes().split(b"\n")
            path.write_bytes(b"\n".join([*lines[:2], lines[2][:5] + damage + lines[2][5:], *lines[3:]]))
        else:
            path.write_text(damage if isinstance(damage, str) else json.dumps(damage))
        with pytest.raises(UserError) as error:
            compare([str(tiny_run), str(other)], str(tmp_path / f"r{i}"))
        assert message in str(error.value) and str(other) in str(error.value), (name, str(error.value))
    other = tmp_path / "no-calibration"
    shutil.copytree(tiny_run, other)
    analysis = json.loads((other / "analysis_dev.json").read_text())
    (other / "analysis_dev.json").write_text(json.dumps({**analysis, "calibration": None}))
    assert len(compare([str(tiny_run), str(other)], str(tmp_path / "r"))["runs"]) == 2
