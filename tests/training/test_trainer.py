import json
import os
import subprocess
import sys

import numpy as np
import pytest

from modernbert_glue.inference.backends import Classifier

from ..conftest import (
    MODERNBERT,
    PROB_ATOL,
    TINY_ARGS,
    assert_labels_match,
    assert_probs_close,
    free_port,
    near_tie,
    run_cli,
    tiny_train_args,
)

METRIC_KEYS = {"task", "model", "preset", "main_metric", "eval_accuracy", "eval_f1", "eval_f1_macro", "eval_mcc",
               "eval_samples",
               "train_seconds", "train_samples_per_second", "epochs", "seed", "device"}
TSV_ROUNDING = 5e-7  # predictions_*.tsv writes scores with 6 decimals


def _prediction_rows(run):
    """(idx, sentence, label, prediction, score) of the run's predictions_dev.tsv."""
    lines = (run / "predictions_dev.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["idx", "sentence", "label", "prediction", "score"]
    rows = [line.split("\t") for line in lines[1:]]
    return [(int(r[0]), r[1], int(r[2]), int(r[3]), float(r[4])) for r in rows]


def _assert_same_scalars(got: dict, want: dict):
    """Metrics dicts equal: counts exactly, floats (and intervals) within fp32 tolerance."""
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, float) or isinstance(value, list):
            assert got[key] == pytest.approx(value, abs=PROB_ATOL), key
        else:
            assert got[key] == value, key


def test_run_folder_has_every_file(tiny_run):
    for name in ("metrics.json", "run.json", "predictions_dev.tsv", "log_history.json", "analysis_dev.json",
                 "misclassified_dev.tsv",
                 "model/config.json", "model/model.safetensors", "model/tokenizer.json"):
        assert (tiny_run / name).is_file(), name
    assert not (tiny_run / "checkpoints").exists()
    assert list((tiny_run / "logs").glob("events.out.tfevents.*")), "TensorBoard logs"
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert METRIC_KEYS <= metrics.keys()
    assert metrics["task"] == "sst2" and metrics["preset"] == "paper" and metrics["eval_samples"] == 160
    assert metrics["seed"] == 42
    # The scalars are those of the predictions the run wrote: recomputed here from predictions_dev.tsv.
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    from modernbert_glue.evaluation.metrics import calibration

    rows = _prediction_rows(tiny_run)
    labels, preds = [r[2] for r in rows], [r[3] for r in rows]
    assert metrics["eval_samples"] == len(rows) and [r[0] for r in rows] == list(range(160))
    assert metrics["eval_accuracy"] == pytest.approx(accuracy_score(labels, preds))
    assert metrics["eval_f1"] == pytest.approx(f1_score(labels, preds))  # GLUE's: the positive class
    assert metrics["eval_f1_macro"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert metrics["eval_mcc"] == pytest.approx(matthews_corrcoef(labels, preds))
    low, high = metrics["eval_accuracy_ci"]
    assert low <= metrics["eval_accuracy"] <= high
    # ECE from the file's top-class scores; a score rounded across a bin edge may move one example between bins
    # (at most 2/n each), so those few widen the tolerance.
    scores = np.array([r[4] for r in rows])
    probs = np.zeros((len(rows), 2))
    probs[np.arange(len(rows)), preds] = scores
    probs[np.arange(len(rows)), 1 - np.array(preds)] = 1 - scores
    edges = np.linspace(0, 1, 11)
    at_edges = int(sum(np.abs(edges - s).min() <= TSV_ROUNDING + PROB_ATOL for s in scores))
    assert metrics["eval_ece"] == pytest.approx(calibration(labels, probs)["ece"],
                                                abs=PROB_ATOL + 2 * at_edges / len(rows))
    assert metrics["infer_sentences_per_second"] > 0 and metrics["peak_memory_mb"] > 0
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["config"]["train"]["lr"] == 1e-3 and run["config"]["model"]["overrides"]["hidden_size"] == 64
    assert run["versions"]["torch"] and run["hardware"]["cpu"] and "train" in run["command"]
    config = json.loads((tiny_run / "model/config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["num_hidden_layers"] == 2 and len(config["layer_types"]) == 2
    settings = json.loads((tiny_run / "model/inference.json").read_text())  # what evaluate/predict/serve use
    assert settings == {"task": "sst2", "text_columns": ["sentence"], "label_column": "label", "regression": False,
                        "max_length": 128, "input_path": "auto", "version": 2}


def test_loss_falls(tiny_run):
    history = json.loads((tiny_run / "log_history.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) >= 6
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.02, losses


def test_reload_gives_identical_scores(tiny_run):
    rows = _prediction_rows(tiny_run)
    assert [r[0] for r in rows] == list(range(160))
    clf = Classifier.load(str(tiny_run / "model"))
    probs = clf.probabilities([r[1] for r in rows])
    # The run scored these in its own process: equal within fp32 tolerance (and the file's 6 decimals).
    assert np.allclose(probs.max(axis=1), [r[4] for r in rows], rtol=0, atol=PROB_ATOL + TSV_ROUNDING)
    assert_labels_match([r[3] for r in rows], probs)
    again = Classifier.load(str(tiny_run / "model")).probabilities([r[1] for r in rows])
    assert np.array_equal(probs, again)  # the same computation in the same process and batches: identical


def test_evaluate_prints_only_json_matching_the_run(tiny_run, small_sst2, tmp_path):
    code, stdout, stderr = run_cli("evaluate", "--model", tiny_run / "model", "--data-dir", small_sst2)
    assert code == 0, stderr
    result = json.loads(stdout)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert result["n"] == 160
    # evaluate scores the dev set in another process than the run did: a prediction within fp32 rounding of a
    # tie may come out either way, so such predictions (rare) loosen the comparison by one example each.
    probs = Classifier.load(str(tiny_run / "model")).probabilities([r[1] for r in _prediction_rows(tiny_run)])
    ties = sum(near_tie(row) for row in probs)
    if ties == 0:
        assert result["accuracy"] == pytest.approx(metrics["eval_accuracy"])
        assert result["accuracy_ci"] == pytest.approx(metrics["eval_accuracy_ci"])
        assert result["f1"] == pytest.approx(metrics["eval_f1"]) and result["mcc"] == pytest.approx(metrics["eval_mcc"])
    else:
        assert abs(result["accuracy"] - metrics["eval_accuracy"]) <= ties / 160 + 1e-9, ties
    assert result["ece"] == pytest.approx(metrics["eval_ece"], abs=PROB_ATOL + 2 * ties / 160)
    for source in (["--file", small_sst2 / "dev.tsv"], ["--data-dir", small_sst2, "--split", "dev"]):  # dev.tsv's name
        code, stdout, stderr = run_cli("evaluate", "--model", tiny_run / "model", *source)
        assert code == 0, stderr[-500:]
        _assert_same_scalars(json.loads(stdout), result)
    for source in (["--file", small_sst2 / "dev.tsv"], ["--data-dir", small_sst2, "--split", "train"]):
        code, stdout, stderr = run_cli("evaluate", "--model", tiny_run / "model", *source, "--max-eval-samples", "5")
        assert code == 0 and json.loads(stdout)["n"] == 5, (source, stderr[-500:])
    renamed = tmp_path / "renamed.tsv"  # the dev file with its own column names
    lines = (small_sst2 / "dev.tsv").read_text().splitlines()
    renamed.write_text("\n".join(["review\tverdict", *lines[1:]]) + "\n")
    code, stdout, stderr = run_cli("evaluate", "--model", tiny_run / "model", "--file", renamed,
                                   "--text-columns", "review", "--label-column", "verdict")
    assert code == 0, stderr[-500:]
    _assert_same_scalars(json.loads(stdout), result)
    code, _, stderr = run_cli("evaluate", "--model", tiny_run / "model", "--data-dir", small_sst2,
                              "--label-column", "verdict")
    assert code == 2 and "--label-column name the columns of --file's file; give --file" in stderr


def test_predict_keeps_input_order(tiny_run, tmp_path):
    texts = ["a long and winding sentence that is much longer than the others , truly", "ok", "bad movie", "x y z"]
    code, stdout, stderr = run_cli("predict", "--model", tiny_run / "model", *texts)
    assert code == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["text"] for r in records] == texts
    clf = Classifier.load(str(tiny_run / "model"))
    probs = clf.probabilities(texts)

    def check(records):
        """Each record is its text's top label and that label's probability, as Classifier gives them."""
        assert [r["text"] for r in records] == texts
        assert_probs_close([r["score"] for r in records], probs.max(axis=1))
        assert_labels_match([r["label"] for r in records], probs, clf.label_names)

    check(records)
    singles = [clf.predict([t])[0]["score"] for t in texts]  # alone, not in a batch: fp32 tolerance
    assert_probs_close([r["score"] for r in records], singles)
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    code, stdout2, _ = run_cli("predict", "--model", tiny_run / "model", "--input", tmp_path / "in.txt")
    assert code == 0
    check([json.loads(line) for line in stdout2.splitlines()])
    code, stdout3, _ = run_cli("predict", "--model", tiny_run / "model", input="\n".join(texts) + "\n")
    assert code == 0
    check([json.loads(line) for line in stdout3.splitlines()])


def test_predict_reads_stdin_as_it_reads_a_file(tiny_run, tmp_path):
    """The same bytes piped or in a file give the same texts and scores: a BOM and CRLF endings removed alike,
    and bytes that are not UTF-8 one line naming stdin's line."""
    raw = "\ufeffgood movie\r\nbad\r\n".encode()
    (tmp_path / "in.txt").write_bytes(raw)
    code, from_file, _ = run_cli("predict", "--model", tiny_run / "model", "--input", tmp_path / "in.txt")
    assert code == 0
    code, piped, stderr = run_cli("predict", "--model", tiny_run / "model", input=raw)
    assert code == 0, stderr
    records = [json.loads(line) for line in piped.splitlines()]
    assert [r["text"] for r in records] == ["good movie", "bad"]
    assert_probs_close([r["score"] for r in records], [json.loads(line)["score"] for line in from_file.splitlines()])
    code, stdout, stderr = run_cli("predict", "--model", tiny_run / "model", input=b"good\n\xffbad\n")
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines()[-1] == "error: <stdin>, line 2: not valid UTF-8 (byte 1 of the line)"
    closed = subprocess.run(f"'{sys.executable}' -m modernbert_glue.cli predict --model '{tiny_run}' <&-", shell=True,
                            executable="/bin/bash", capture_output=True, text=True, timeout=120, check=False)
    assert closed.returncode == 2 and closed.stderr.strip().splitlines()[-1].startswith("error: <stdin>: closed")


def test_predict_refuses_an_empty_line(tiny_run, tmp_path):
    (tmp_path / "in.txt").write_text("good\n\nbad\n")
    code, stdout, stderr = run_cli("predict", "--model", tiny_run / "model", "--input", tmp_path / "in.txt")
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'in.txt'}, line 2: empty line (every line must hold a sentence)"


def test_non_empty_output_dir_is_refused(tiny_run, small_sst2):
    code, _, stderr = run_cli(*tiny_train_args(small_sst2, tiny_run))
    assert code == 2 and "output folder is not empty (pass --overwrite" in stderr
    assert (tiny_run / "metrics.json").is_file()


@pytest.mark.parametrize("engine", ["trainer", "engine"])
def test_paper_preset_smoke_one_step(small_sst2, tmp_path, engine):
    """No --preset: the paper recipe, 64 sentences at batch 64 is one step per epoch, all of it warmup at a rate of
    0: both loops say that it trains nothing."""
    out = tmp_path / "paper"
    code, stdout, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS,
                                   "--data-dir", small_sst2, "--max-train-samples", "64", "--max-eval-samples", "32",
                                   "--epochs", "1", "--output-dir", out, "--engine", engine)
    assert code == 0, stderr[-2000:]
    metrics = json.loads(stdout)
    assert metrics["steps"] == 1 and metrics["preset"] == "paper" and metrics["eval_samples"] == 32
    assert stderr.count("the run's 1 step(s) are all warmup at a learning rate of 0: nothing is trained; train on "
                        "more data or epochs, or lower train.warmup_ratio") == 1, stderr[-2000:]


def test_unknown_model_override_is_refused(small_sst2, tmp_path):
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", "--model-override", "num_layers=2",
                              "--data-dir", small_sst2, "--output-dir", tmp_path / "o")
    assert code == 2 and "config has no field 'num_layers'" in stderr


def test_real_sbert_weights_few_steps(small_sst2, tmp_path):
    """The packaged all-MiniLM-L6-v2, resolved from its Hub id offline, is loaded (not re-initialised) and trains;
    the cpu-sbert preset keeps its word embeddings fixed and trains the rest."""
    from safetensors.numpy import load_file

    from modernbert_glue.device import fast_cpu_bf16
    from modernbert_glue.models import packaged_copy

    out = tmp_path / "sbert"
    code, stdout, stderr = run_cli("train", "--preset", "cpu-sbert", "--data-dir", small_sst2,
                                   "--max-train-samples", "64", "--max-eval-samples", "64", "--epochs", "1",
                                   "--batch-size", "16", "--set", "train.evals_per_epoch=1", "--output-dir", out)
    assert code == 0, stderr[-2000:]
    metrics = json.loads(stdout)
    assert metrics["model"] == "sentence-transformers/all-MiniLM-L6-v2" and metrics["steps"] == 4
    assert metrics["bf16"] is fast_cpu_bf16()  # the preset's `fast`: emulated bf16 was many times slower than fp32
    config = json.loads((out / "model/config.json").read_text())
    assert (config["model_type"], config["num_hidden_layers"], config["hidden_size"]) == ("bert", 6, 384)
    packaged = load_file(str(packaged_copy("sentence-transformers/all-MiniLM-L6-v2") / "model.safetensors"))
    tuned = load_file(str(out / "model/model.safetensors"))

    def moved(key):
        original = packaged.get(key, packaged.get("bert." + key))
        return np.abs(tuned["bert." + key] - original).max()

    assert moved("embeddings.word_embeddings.weight") == 0  # frozen (train.freeze_embeddings)
    assert 0 < moved("encoder.layer.0.attention.self.query.weight") < 0.01  # pretrained weights, nudged by 4 steps


def test_cpu_attention_kernel_is_restored():
    import torch

    from modernbert_glue.device import cpu_attention_kernel

    if torch.cuda.is_available():
        pytest.skip("the CPU kernel switch leaves GPUs alone")
    before = torch.backends.cuda.flash_sdp_enabled()
    with cpu_attention_kernel(flash=False):
        assert torch.backends.cuda.flash_sdp_enabled() is False
    assert torch.backends.cuda.flash_sdp_enabled() == before


def test_torchrun_two_processes(small_sst2, tmp_path):
    """The same `train` under torchrun (DDP, gloo on CPU): rank 0 writes one run folder."""
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           "-m", "modernbert_glue.cli", *map(str, tiny_train_args(small_sst2, out, "--epochs", "1"))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["steps"] == 10  # 320 sentences / (16 per device x 2 devices)


def test_predict_input_paths_agree(tiny_run):
    texts = ["a long and winding sentence that is much longer than the others , truly", "ok", "bad movie", "x y z"]
    outputs = {}
    for path in ("auto", "padded", "dynamic", "grouped", "packed"):
        code, stdout, stderr = run_cli("predict", "--model", tiny_run / "model", "--input-path", path, *texts)
        assert code == 0, stderr
        outputs[path] = [json.loads(line) for line in stdout.splitlines()]
    clf = Classifier.load(str(tiny_run / "model"))
    probs = clf.probabilities(texts)
    for path, records in outputs.items():
        assert [r["text"] for r in records] == texts
        assert np.allclose([r["score"] for r in records], [r["score"] for r in outputs["auto"]],
                           rtol=0, atol=PROB_ATOL), path
        assert_probs_close([r["score"] for r in records], probs.max(axis=1))
        assert_labels_match([r["label"] for r in records], probs, clf.label_names)


def test_packed_token_budget_trains_with_one_shape_and_bad_budgets_are_refused(small_sst2, tmp_path):
    common = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
              "--max-train-samples", "64", "--max-eval-samples", "32", "--epochs", "1", "--batch-size", "16"]
    code, stdout, stderr = run_cli(*common, "--input-path", "packed", "--token-budget", "512",
                                   "--output-dir", tmp_path / "ok")
    assert code == 0, stderr[-2000:]
    assert json.loads(stdout)["steps"] == 4 and json.loads(stdout)["input_path"] == "packed"
    run = json.loads((tmp_path / "ok" / "run.json").read_text())
    assert run["config"]["train"]["packed_token_budget"] == 512
    code, _, stderr = run_cli(*common, "--input-path", "grouped", "--token-budget", "512", "--output-dir", tmp_path / "a")
    # the user typed --token-budget: the fix is named in the options they use
    assert code == 2 and ("packed_token_budget needs the packed input path, not 'grouped' (pass --input-path packed "
                          "with --token-budget)") in stderr
    code, _, stderr = run_cli(*common, "--input-path", "packed", "--token-budget", "500", "--output-dir", tmp_path / "b")
    assert code == 2 and "must be a multiple of 256 tokens, got 500" in stderr


def test_packed_collator_with_a_budget_gives_one_shape():
    from modernbert_glue.inputs import Collator

    collate = Collator("packed", pad_id=0, max_length=128, token_budget=512)
    for n in (3, 12):
        batch = collate([{"input_ids": [5] * (10 + i), "labels": i % 2} for i in range(n)])["packed"]
        assert batch.input_ids.shape == (2, 256) and batch.num_sentences == n
