import json
import os
import subprocess
import sys

import numpy as np
import pytest

from modernbert_glue.predict import Classifier

from .conftest import MODERNBERT, TINY_ARGS, run_cli, tiny_train_args

METRIC_KEYS = {"task", "model", "preset", "eval_accuracy", "eval_f1", "eval_mcc", "eval_samples",
               "train_seconds", "train_samples_per_second", "epochs", "seed", "device"}


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
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and metrics["seed"] == 42
    low, high = metrics["eval_accuracy_ci"]
    assert low <= metrics["eval_accuracy"] <= high and 0 <= metrics["eval_ece"] <= 1
    assert metrics["infer_sentences_per_second"] > 0 and metrics["peak_memory_mb"] > 0
    run = json.loads((tiny_run / "run.json").read_text())
    assert run["config"]["train"]["lr"] == 1e-3 and run["config"]["model"]["overrides"]["hidden_size"] == 64
    assert run["versions"]["torch"] and run["hardware"]["cpu"] and "train" in run["command"]
    config = json.loads((tiny_run / "model/config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["num_hidden_layers"] == 2 and len(config["layer_types"]) == 2


def test_loss_falls(tiny_run):
    history = json.loads((tiny_run / "log_history.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) >= 6
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.02, losses


def test_reload_gives_identical_scores(tiny_run):
    rows = [line.split("\t") for line in (tiny_run / "predictions_dev.tsv").read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == list(range(160))
    clf = Classifier.load(str(tiny_run / "model"))
    probs = clf.probabilities([r[1] for r in rows])
    assert np.allclose(probs.max(axis=1), [float(r[4]) for r in rows], atol=1e-5)
    assert list(probs.argmax(axis=1)) == [int(r[3]) for r in rows]
    again = Classifier.load(str(tiny_run / "model")).probabilities([r[1] for r in rows])
    assert np.array_equal(probs, again)


def test_evaluate_prints_only_json_matching_the_run(tiny_run, small_sst2):
    code, stdout, stderr = run_cli("evaluate", "--model", tiny_run / "model", "--data-dir", small_sst2)
    assert code == 0, stderr
    result = json.loads(stdout)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert result["n"] == 160 and result["accuracy"] == pytest.approx(metrics["eval_accuracy"])
    assert result["accuracy_ci"] == pytest.approx(metrics["eval_accuracy_ci"])
    assert result["f1"] == pytest.approx(metrics["eval_f1"]) and result["mcc"] == pytest.approx(metrics["eval_mcc"])
    code, stdout, _ = run_cli("evaluate", "--model", tiny_run / "model", "--file", small_sst2 / "dev.tsv")
    assert json.loads(stdout) == result


def test_predict_keeps_input_order(tiny_run, tmp_path):
    texts = ["a long and winding sentence that is much longer than the others , truly", "ok", "bad movie", "x y z"]
    code, stdout, stderr = run_cli("predict", "--model", tiny_run / "model", *texts)
    assert code == 0, stderr
    records = [json.loads(line) for line in stdout.splitlines()]
    assert [r["text"] for r in records] == texts
    assert all(r["label"] in ("negative", "positive") and 0.5 <= r["score"] <= 1 for r in records)
    singles = [Classifier.load(str(tiny_run / "model")).predict([t])[0]["score"] for t in texts]
    assert np.allclose([r["score"] for r in records], singles, atol=1e-5)
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    code, stdout2, _ = run_cli("predict", "--model", tiny_run / "model", "--input", tmp_path / "in.txt")
    assert code == 0 and stdout2 == stdout
    code, stdout3, _ = run_cli("predict", "--model", tiny_run / "model", input="\n".join(texts) + "\n")
    assert code == 0 and stdout3 == stdout


def test_predict_refuses_an_empty_line(tiny_run, tmp_path):
    (tmp_path / "in.txt").write_text("good\n\nbad\n")
    code, stdout, stderr = run_cli("predict", "--model", tiny_run / "model", "--input", tmp_path / "in.txt")
    assert code == 2 and stdout == ""
    assert stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'in.txt'}, line 2: empty line (every line must hold a sentence)"


def test_non_empty_output_dir_is_refused(tiny_run, small_sst2):
    code, _, stderr = run_cli(*tiny_train_args(small_sst2, tiny_run))
    assert code == 2 and "output folder is not empty (pass --overwrite" in stderr
    assert (tiny_run / "metrics.json").is_file()


def test_paper_preset_smoke_one_step(small_sst2, tmp_path):
    """No --preset: the paper recipe, 64 sentences at batch 64 is one step per epoch."""
    out = tmp_path / "paper"
    code, stdout, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS,
                                   "--data-dir", small_sst2, "--max-train-samples", "64", "--max-eval-samples", "32",
                                   "--epochs", "1", "--output-dir", out)
    assert code == 0, stderr[-2000:]
    metrics = json.loads(stdout)
    assert metrics["steps"] == 1 and metrics["preset"] == "paper" and metrics["eval_samples"] == 32


def test_unknown_model_override_is_refused(small_sst2, tmp_path):
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", "--model-override", "num_layers=2",
                              "--data-dir", small_sst2, "--output-dir", tmp_path / "o")
    assert code == 2 and "config has no field 'num_layers'" in stderr


def test_real_sbert_weights_few_steps(small_sst2, tmp_path):
    """The packaged all-MiniLM-L6-v2, resolved from its Hub id offline, is loaded (not re-initialised) and trains;
    the cpu-sbert preset keeps its word embeddings fixed and trains the rest."""
    from safetensors.numpy import load_file

    from modernbert_glue.models import packaged_copy

    out = tmp_path / "sbert"
    code, stdout, stderr = run_cli("train", "--preset", "cpu-sbert", "--data-dir", small_sst2,
                                   "--max-train-samples", "64", "--max-eval-samples", "64", "--epochs", "1",
                                   "--batch-size", "16", "--set", "train.evals_per_epoch=1", "--output-dir", out)
    assert code == 0, stderr[-2000:]
    metrics = json.loads(stdout)
    assert metrics["model"] == "sentence-transformers/all-MiniLM-L6-v2" and metrics["steps"] == 4
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

    from modernbert_glue.train import cpu_attention_kernel

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
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
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
    for path, records in outputs.items():
        assert [r["text"] for r in records] == texts
        assert np.allclose([r["score"] for r in records], [r["score"] for r in outputs["auto"]], atol=1e-5), path


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
    assert code == 2 and "packed_token_budget needs the packed input path, not 'grouped'" in stderr
    code, _, stderr = run_cli(*common, "--input-path", "packed", "--token-budget", "500", "--output-dir", tmp_path / "b")
    assert code == 2 and "must be a multiple of 256 tokens, got 500" in stderr


def test_packed_collator_with_a_budget_gives_one_shape():
    from modernbert_glue.packing import PackedCollator

    collate = PackedCollator(pad_id=0, row_tokens=256, token_budget=512)
    for n in (3, 12):
        batch = collate([{"input_ids": [5] * (10 + i), "labels": i % 2} for i in range(n)])["packed"]
        assert batch.input_ids.shape == (2, 256) and batch.num_sentences == n
