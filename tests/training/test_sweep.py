"""`sweep`: a 2x2 grid interrupted and resumed (finished runs kept as they were), runs two at a time through the
same launcher on a CPU, and the chosen config is the best mean of the task's main metric."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from modernbert_glue.errors import UserError
from modernbert_glue.outputs import read_marker
from modernbert_glue.report.runs import load_runs
from modernbert_glue.submission import _model_dir as submission_model
from modernbert_glue.training.sweep import SweepConfig, _command, config_name, configs

from ..conftest import CLI, MODERNBERT, TINY_ARGS, glue_folder, near_tie, run_cli, write_tsv

HANG_GUARD_S = 300


TWO_AT_ONCE = ("--parallel", "2", "--memory-per-run-gb", "0")  # whatever memory CI has free


def sweep_args(data, out, lrs, *extra):
    return ["sweep", "--task", "rte", "--data-dir", data, "--model", MODERNBERT, "--random-init", *TINY_ARGS,
            "--max-train-samples", "32", "--max-eval-samples", "16", "--set", "train.batch_size=16",
            "--lr", lrs, "--epochs", "1", "--seeds", "7", "--output-dir", out, *extra]


def test_the_grid_is_every_combination_in_order_and_names_its_runs():
    grid = SweepConfig(grid={"lr": [1e-4, 1e-3], "ep": [1, 2]}, seeds=[7])
    assert [config_name(c) for c in configs(grid)] == ["lr=0.0001,ep=1", "lr=0.0001,ep=2", "lr=0.001,ep=1",
                                                       "lr=0.001,ep=2"]
    command = _command(grid, configs(grid)[3], 7, Path("out"), 0)
    assert command[-6:] == ["--set", "train.lr=0.001", "--set", "train.epochs=2", "--set", "train.seed=7"]


def test_grid_values_are_checked_and_a_decoupled_weight_decay_is_torchs_in_every_record(tmp_path):
    import math

    from modernbert_glue.outputs import open_output
    from modernbert_glue.training.sweep import summarise, table

    for grid, decoupled, message in (
            ({"lr": [1e-4]}, True, "--decoupled-weight-decay converts the grid's --weight-decay values"),
            ({"lr": [1e-5, 1.0000001e-5]}, False, "two configs are both named lr=1e-05"),
            ({"lr": [0.0]}, False, "--lr needs positive values")):
        with pytest.raises(UserError, match=message):
            SweepConfig(grid=grid, seeds=[1], decoupled_weight_decay=decoupled)
    SweepConfig(grid={"lr": [1e-4], "wd": [0.0, 0.01]}, seeds=[1])  # no weight decay is a value too
    cfg = SweepConfig(grid={"lr": [1e-4, 1e-3], "wd": [1e-5]}, seeds=[7], decoupled_weight_decay=True)
    assert "train.weight_decay=0.1" in _command(cfg, configs(cfg)[0], 7, tmp_path / "new", 0)  # 1e-5 / 1e-4
    third = SweepConfig(grid={"lr": [3e-5], "wd": [1e-6]}, seeds=[7], decoupled_weight_decay=True)
    assert "train.weight_decay=0.0333333333333333" in _command(third, configs(third)[0], 7, tmp_path / "new", 0)
    unfinished = open_output(tmp_path / "unfinished", "run")  # resumed with this launch's share of the threads
    assert _command(cfg, configs(cfg)[0], 7, unfinished.path, 2)[-4:] == [
        "--resume", str(unfinished.path), "--set", "train.threads=2"]
    jobs = []
    for config, value in zip(configs(cfg), (float("nan"), 0.6)):
        path = tmp_path / config_name(config)
        path.mkdir()
        (path / "metrics.json").write_text(json.dumps({"main_metric": "accuracy", "eval_accuracy": value}))
        jobs.append((config, 7, path))
    summary = summarise(jobs)
    assert summary["chosen"]["name"] == "lr=0.001,wd=1e-05"  # a NaN mean is never the best, first or not
    assert summary["eval_samples"] == [None] and "(on ? dev examples)" in table(summary)  # not recorded: unknown
    (jobs[1][2] / "metrics.json").write_text(json.dumps({"main_metric": "accuracy", "eval_accuracy": 0.6,
                                                           "eval_samples": [16]}))  # damaged: unknown, not a crash
    assert summarise(jobs)["eval_samples"] == [None]
    assert math.isnan(summary["configs"]["lr=0.0001,wd=1e-05"]["mean"])
    summary["decoupled_weight_decay"] = True
    assert "each run trained with torch's wd / lr" in table(summary)
    ties = []  # equal means whose float sums differ in the last bit: the earlier config, as the rule says
    for config, correct in zip(configs(cfg), ((600, 610), (605, 605))):
        for seed, count in zip((1, 2), correct):
            path = tmp_path / f"tie-{config_name(config)}-{seed}"
            path.mkdir()
            (path / "metrics.json").write_text(json.dumps({"main_metric": "accuracy", "eval_accuracy": count / 872}))
            ties.append((config, seed, path))
    summary = summarise(ties)
    assert summary["configs"]["lr=0.0001,wd=1e-05"]["mean"] != summary["configs"]["lr=0.001,wd=1e-05"]["mean"]
    assert summary["chosen"]["name"] == "lr=0.0001,wd=1e-05"
    assert summary["tied_with_chosen"] == ["lr=0.001,wd=1e-05"]  # and the table says the choice is the grid's order
    assert "lr=0.001,wd=1e-05 ties with the chosen config: it is chosen as the first in grid order" in table(summary)
    assert summarise(jobs)["tied_with_chosen"] == [] and "ties with" not in table(summarise(jobs))


def test_free_memory_falls_back_to_ram_when_nvidia_smi_has_no_number(tmp_path, monkeypatch):
    from modernbert_glue.training.sweep import free_memory_gb

    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho \"$@\" > \"$(dirname \"$0\")/args\"\necho '[N/A]'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    ram = free_memory_gb()  # "[N/A]" was a ValueError traceback that left the runs orphaned
    assert ram > 0 and (tmp_path / "args").read_text().split()[:2] == ["-i", "3"]  # the runs' first GPU
    (tmp_path / "args").unlink()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the runs are on the CPU: RAM, GPU not asked
    assert free_memory_gb() > 0 and not (tmp_path / "args").exists()


def test_a_run_that_crashes_fails_the_sweep_with_exit_1_naming_it(tmp_path, monkeypatch, capfd):
    """Not a divergence (failure.json, a table row) but a crash: one line naming the run, exit code 1 (a run
    failed, not a wrong option), and where its error went."""
    import sys

    import modernbert_glue.training.sweep as sweep_module
    from modernbert_glue.errors import RunFailed, UserError

    crash = [sys.executable, "-c", "import sys; sys.exit('Traceback: the run crashed')"]
    monkeypatch.setattr(sweep_module, "_check_train_options", lambda cfg, out: None)
    monkeypatch.setattr(sweep_module, "_command", lambda *args: crash)
    cfg = SweepConfig(grid={"lr": [1e-4]}, seeds=[7], train_args=["--task", "rte"])
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match="mine: not empty, and not a sweep folder; give a new or empty --output-dir"):
        sweep_module.sweep(cfg, str(tmp_path / "mine"))  # refused before anything runs
    with pytest.raises(RunFailed) as failed:
        sweep_module.sweep(cfg, str(tmp_path / "sweep"))
    assert failed.value.exit_code == 1 and str(failed.value) == (
        "sweep: 1 run(s) failed: lr=0.0001-seed-7 (each run's error is above, on stderr; once its cause is fixed, "
        "the same command runs them again)")
    assert "the run crashed" in capfd.readouterr().err


def finishing_run(signal_launcher: bool):
    """A stand-in for a run's command: ignores SIGTERM (a run at its last step finishes), optionally sends one to
    its launcher first, and writes a finished run folder."""
    import sys

    def command(cfg, config, seed, folder, threads):
        return [sys.executable, "-c", "import os, signal, time\n"
                "from modernbert_glue.outputs import open_output\n"
                "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                f"{'os.kill(os.getppid(), signal.SIGTERM)' if signal_launcher else 'pass'}\n"
                "time.sleep(1)\n"
                f"run = open_output({str(folder)!r}, 'run')\n"
                "run.write_json('metrics.json', {'main_metric': 'accuracy', 'eval_accuracy': 0.5})\n"
                "run.finish()\n"]
    return command


def test_a_signal_whose_runs_finish_anyway_ends_with_the_table(tmp_path, monkeypatch):
    """A signal after the last run started, which finishes all the same (its last step): nothing is left to
    continue, so the sweep writes its table and succeeds instead of saying it stopped."""
    import modernbert_glue.training.sweep as sweep_module

    monkeypatch.setattr(sweep_module, "_check_train_options", lambda cfg, out: None)
    monkeypatch.setattr(sweep_module, "_command", finishing_run(signal_launcher=True))
    summary = sweep_module.sweep(SweepConfig(grid={"lr": [1e-4]}, seeds=[7]), str(tmp_path / "sweep"))
    assert summary["chosen"]["mean"] == 0.5 and read_marker(tmp_path / "sweep")["complete"]


def test_no_run_starts_after_a_signal_that_came_while_free_memory_was_read(tmp_path, monkeypatch):
    """nvidia-smi may take seconds: a signal then must not be followed by a run that no one tells to stop."""
    import modernbert_glue.training.sweep as sweep_module

    def signalled_while_reading() -> float:
        os.kill(os.getpid(), signal.SIGTERM)
        return 1e9

    monkeypatch.setattr(sweep_module, "_check_train_options", lambda cfg, out: None)
    monkeypatch.setattr(sweep_module, "_command", finishing_run(signal_launcher=False))
    monkeypatch.setattr(sweep_module, "free_memory_gb", signalled_while_reading)
    with pytest.raises(Exception, match="stopped by SIGTERM, after the runs in progress ended"):
        sweep_module.sweep(SweepConfig(grid={"lr": [1e-4, 1e-3]}, seeds=[7], parallel=2), str(tmp_path / "sweep"))
    assert not (tmp_path / "sweep" / "lr=0.001-seed-7").exists()  # the first one got the signal, forwarded


def test_sweep_resumes_after_a_kill_and_runs_two_at_once(tmp_path):
    data = glue_folder(tmp_path, "rte", 32, 16)
    out = tmp_path / "sweep"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    lrs = "1e-4,3e-4,1e-3"
    proc = subprocess.Popen([*CLI, *map(str, sweep_args(data, out, lrs))], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = out / "lr=0.0001,ep=1-seed-7"
    deadline = time.monotonic() + HANG_GUARD_S
    while not (read_marker(first) or {}).get("complete"):
        assert proc.poll() is None and time.monotonic() < deadline, "the first run did not finish"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the run it started next
    proc.wait()
    kept = (first / "metrics.json").stat().st_mtime_ns
    assert not (out / "sweep.json").exists()

    code, stdout, stderr = run_cli(*sweep_args(data, out, lrs, *TWO_AT_ONCE), timeout=HANG_GUARD_S)
    assert code == 0, stderr[-3000:]
    assert (first / "metrics.json").stat().st_mtime_ns == kept  # finished before the kill: not run again
    summary = json.loads((out / "sweep.json").read_text())
    assert len(summary["configs"]) == 3 and summary["metric"] == "accuracy"
    best = max(summary["configs"].values(), key=lambda row: row["mean"])
    assert summary["chosen"]["mean"] == best["mean"] and json.loads(stdout)["name"] == summary["chosen"]["name"]
    for name in summary["configs"]:
        metrics = json.loads((out / f"{name}-seed-7" / "metrics.json").read_text())
        assert metrics["eval_accuracy"] == summary["configs"][name]["values"]["7"]
    timing = json.loads((out / "timing.json").read_text())
    spans = sorted(timing[k][-1] for k in timing if k != first.name)  # the two the second launch ran
    assert len(spans) == 2 and spans[1][0] < spans[0][1], spans  # the second started before the first ended
    run = json.loads((out / "lr=0.001,ep=1-seed-7" / "run.json").read_text())
    assert run["config"]["train"]["lr"] == 1e-3 and run["config"]["train"]["epochs"] == 1.0
    assert run["config"]["train"]["threads"] == max(1, (os.cpu_count() or 1) // 2)


def test_warm_start_keeps_the_encoder_and_replaces_the_head(tmp_path):
    """--init-from: every weight but the classification layer comes from the given model; the run records it."""
    import torch

    from modernbert_glue.models import load_saved_classifier

    data = glue_folder(tmp_path, "rte", 32, 16)
    source = tmp_path / "source"
    base = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--max-train-samples", "32",
            "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16"]
    code, _, stderr = run_cli(*base, "--task", "rte", "--data-dir", data, "--output-dir", source)
    assert code == 0, stderr[-2000:]
    stsb = glue_folder(tmp_path, "stsb", 32, 16)
    warm = tmp_path / "warm"
    code, _, stderr = run_cli(*base, "--task", "stsb", "--data-dir", stsb, "--init-from", source / "model",
                              "--set", "train.lr=1e-12", "--output-dir", warm)  # ~no update: the start survives
    assert code == 0, stderr[-2000:]
    before, _ = load_saved_classifier(str(source / "model"))
    after, _ = load_saved_classifier(str(warm / "model"))
    a, b = before.state_dict(), after.state_dict()
    assert b["classifier.weight"].shape == (1, 64) and a["classifier.weight"].shape == (2, 64)  # a new head
    for key in a:
        if not key.startswith("classifier."):
            assert torch.allclose(a[key], b[key], atol=1e-6), key
    metrics = json.loads((warm / "metrics.json").read_text())
    assert metrics["init_from"] == str(source / "model")
    code, _, stderr = run_cli(*base, "--task", "stsb", "--data-dir", stsb, "--init-from", tmp_path / "nowhere",
                              "--output-dir", tmp_path / "x")
    assert code == 2 and "nowhere" in stderr and "Traceback" not in stderr


def test_init_from_takes_each_seeds_own_model(tmp_path):
    """--init-from DIR/seed-{seed}/model with --seeds: each seed starts from the same seed's model."""
    data = glue_folder(tmp_path, "rte", 32, 16)
    base = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--task", "rte", "--data-dir", data,
            "--max-train-samples", "16", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16"]
    code, _, stderr = run_cli(*base, "--seeds", "1,2", "--output-dir", tmp_path / "first")
    assert code == 0, stderr[-2000:]
    template = str(tmp_path / "first" / "seed-{seed}" / "model")
    runs = str(tmp_path / "first" / "seed-{seed}")  # each seed's run folder: its model/ (as --model takes either)
    code, _, stderr = run_cli(*base, "--seeds", "2,1", "--init-from", runs, "--output-dir", tmp_path / "second")
    assert code == 0, stderr[-2000:]
    for seed in (1, 2):
        metrics = json.loads((tmp_path / "second" / f"seed-{seed}" / "metrics.json").read_text())
        assert metrics["init_from"] == str(tmp_path / "first" / f"seed-{seed}" / "model")
    code, _, stderr = run_cli(*base, "--seed", "3", "--init-from", template, "--output-dir", tmp_path / "third")
    assert code == 2 and "seed-3" in stderr and "Traceback" not in stderr
    # a typo in a data path is refused before the seeds folder is touched, even with --overwrite
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "second").rglob("*"))
    code, _, stderr = run_cli(*base, "--train-file", tmp_path / "trian.tsv", "--seeds", "2,1", "--init-from", template,
                              "--output-dir", tmp_path / "second", "--overwrite")
    assert code == 2 and "trian.tsv: file not found" in stderr
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "second").rglob("*")) == before
    # --init-from without --model: the run, its card and compare name the base model the weights come from
    code, _, stderr = run_cli("train", "--init-from", tmp_path / "first" / "seed-1", "--task", "rte",
                              "--data-dir", data, "--max-train-samples", "16", "--max-eval-samples", "16",
                              "--epochs", "1", "--batch-size", "16", "--output-dir", tmp_path / "fourth")
    assert code == 0, stderr[-2000:]
    fourth = json.loads((tmp_path / "fourth" / "metrics.json").read_text())
    assert fourth["model"] == str(MODERNBERT) and fourth["random_init"] is True  # random weights, two runs on
    assert fourth["model_sizes"] == {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128,
                                     "num_attention_heads": 2}  # the sizes too (its own config has no overrides)
    saved = json.loads((tmp_path / "fourth" / "run.json").read_text())["config"]["model"]  # it named the preset's
    assert (saved["name"], saved["random_init"]) == (str(MODERNBERT), True)
    # a --model that is not the base of --init-from was recorded in run.json, and ignored
    code, stdout, stderr = run_cli(*base, "--model", "sentence-transformers/all-MiniLM-L6-v2", "--seed", "1",
                                   "--init-from", template, "--output-dir", tmp_path / "fifth")
    assert code == 2 and not (tmp_path / "fifth").exists(), stderr[-2000:]
    assert stderr.strip().splitlines()[-1] == (
        f"error: --model sentence-transformers/all-MiniLM-L6-v2: --init-from {tmp_path}/first/seed-1/model was "
        f"fine-tuned from {MODERNBERT}, whose weights this run starts from; drop --model")
    card = (tmp_path / "fourth" / "model" / "README.md").read_text()
    assert f"# {Path(MODERNBERT).name} fine-tuned on GLUE RTE" in card and "ModernBERT-base" not in card
    assert "(random weights; num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=2)" in card


def test_glue_submission_writes_the_servers_files(tmp_path):
    data = glue_folder(tmp_path, "rte", 32, 16)
    run = tmp_path / "rte-run"
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--task", "rte",
                              "--data-dir", data, "--max-train-samples", "32", "--max-eval-samples", "16",
                              "--epochs", "1", "--batch-size", "16", "--output-dir", run)
    assert code == 0, stderr[-2000:]
    root = tmp_path / "glue"
    (root / "rte").mkdir(parents=True)
    write_tsv(root / "rte" / "test.tsv", ["index\tsentence1\tsentence2", "0\tA man sleeps.\tA man rests.",
                                          "1\tIt rains.\tThe sun shines."])
    code, stdout, stderr = run_cli("glue-submission", run, "--output", tmp_path / "sub", "--data-root", root)
    assert code == 0, stderr[-2000:]
    lines = (tmp_path / "sub" / "RTE.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 3
    assert all(line.split("\t")[1] in ("entailment", "not_entailment") for line in lines[1:])
    summary = json.loads(stdout)
    assert summary["files"]["RTE"] == {"run": str(run), "model": str(run / "model"), "rows": 2, "glue_rows": 3000,
                                       "matches_glue": False}
    assert "CoLA" in summary["missing"]
    code, _, stderr = run_cli("glue-submission", run, "--output", tmp_path / "sub2", "--data-root", tmp_path / "none")
    assert code == 2 and "none/rte: data folder not found" in stderr and not (tmp_path / "sub2").exists()
    # an ONNX export of the run predicts the same labels (where torch's two probabilities are not a near tie)
    from modernbert_glue.inference.backends import Classifier

    code, _, stderr = run_cli("export", "onnx", "--model", run / "model", "--output", tmp_path / "onnx")
    assert code == 0, stderr[-2000:]
    code, _, stderr = run_cli("glue-submission", tmp_path / "onnx", "--output", tmp_path / "sub3", "--data-root", root)
    assert code == 0, stderr[-2000:]
    probs = Classifier.load(str(run / "model")).probabilities([("A man sleeps.", "A man rests."),
                                                               ("It rains.", "The sun shines.")])
    onnx_lines = (tmp_path / "sub3" / "RTE.tsv").read_text().splitlines()
    assert len(onnx_lines) == 3
    for row, a, b in zip(probs, lines[1:], onnx_lines[1:]):
        assert a == b or near_tie(row), (a, b, row)


def test_a_seeds_folder_submits_its_best_seed_and_a_nan_metric_ranks_last(tmp_path):
    from modernbert_glue.submission import _model_dir

    for first, second, best in ((float("nan"), 0.6, 2), (0.7, float("nan"), 1), (0.5, 0.6, 2)):
        seeds = tmp_path / f"seeds-{best}-{first}"
        for seed in (1, 2):
            (seeds / f"seed-{seed}" / "model").mkdir(parents=True)
        (seeds / "seeds.json").write_text(json.dumps({
            "seeds": [1, 2], "main_metric": "accuracy", "eval_accuracy_mean": 0.6, "eval_accuracy_std": 0.0,
            "per_seed": [{"seed": 1, "eval_accuracy": first}, {"seed": 2, "eval_accuracy": second}]}))
        assert _model_dir(str(seeds)) == seeds / f"seed-{best}" / "model"


def test_an_mnli_run_gives_both_mnli_files_and_ax(tmp_path):
    """An MNLI model predicts MNLI-m, MNLI-mm and AX (the diagnostic set) with label names; `predict --task ax`
    takes it too, and refuses a model of another task."""
    from ..conftest import mnli_folder

    data = mnli_folder(tmp_path / "glue" / "mnli", 24)
    run = tmp_path / "mnli-run"
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--task", "mnli",
                              "--data-dir", data, "--epochs", "1", "--batch-size", "8", "--output-dir", run,
                              "--test-file", data / "dev_matched.tsv")  # a labelled test file keeps dev-mismatched
    assert code == 0, stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["eval_samples"] == 24 and 0 <= metrics["eval_mismatched_accuracy"] <= 1
    assert metrics["test_accuracy"] == metrics["eval_accuracy"]  # the same file, the same model
    assert (run / "predictions_dev_mismatched.tsv").is_file() and (run / "predictions_test.tsv").is_file()
    code, stdout, stderr = run_cli("glue-submission", run, "--output", tmp_path / "sub",
                                   "--data-root", tmp_path / "glue")
    assert code == 0, stderr[-2000:]
    rows = {}
    for name, n in (("MNLI-m", 5), ("MNLI-mm", 5), ("AX", 4)):
        lines = (tmp_path / "sub" / f"{name}.tsv").read_text().splitlines()
        assert lines[0] == "index\tprediction" and len(lines) == n + 1, name
        rows[name] = [line.split("\t")[1] for line in lines[1:]]
        assert set(rows[name]) <= {"entailment", "neutral", "contradiction"}
    assert rows["MNLI-m"] == rows["MNLI-mm"]  # the same pairs in both test files
    code, stdout, stderr = run_cli("predict", "--model", run / "model", "--task", "ax",
                                   "--input", tmp_path / "glue" / "ax" / "diagnostic.tsv")
    assert code == 0, stderr[-2000:]
    assert [json.loads(line)["label"] for line in stdout.splitlines()] == rows["AX"]
    code, _, stderr = run_cli("predict", "--model", run / "model", "--task", "rte", "a", "b")
    assert code == 2 and "was trained on mnli" in stderr


def test_a_sweep_continues_only_with_the_options_it_started_with(tmp_path, caplog):
    from modernbert_glue.errors import UserError
    from modernbert_glue.outputs import open_output, write_json
    from modernbert_glue.training.sweep import sweep

    for grid, seeds, message in (({"lr": [1e-4]}, [1, 1], "--seeds repeats a value"),  # as train --seeds
                                 ({"lr": [1e-4, 1e-4]}, [1], "--lr repeats a value"),
                                 ({"lr": [float("nan")]}, [1], "--lr needs positive values"),
                                 ({"lr": [1e-4], "ep": [0.0]}, [1], "--epochs needs positive values"),  # was --ep
                                 ({"lr": [1e-4], "wd": [0.1, 0.1]}, [1], "--weight-decay repeats a value"),
                                 ({"lr": [1e-4]}, [-1], "--seeds must be between 0 and 4294967295")):
        with pytest.raises(UserError, match=message):
            SweepConfig(grid=grid, seeds=seeds, train_args=["--task", "rte"])
    folder = open_output(tmp_path / "sweep", "sweep")
    grid = {"grid": {"lr": [1e-4]}, "seeds": [1]}
    write_json(folder.file("sweep-config.json"), {"train_args": ["--task", "rte"], "decoupled_weight_decay": False,
                                                  **grid})
    other = SweepConfig(grid={"lr": [1e-4]}, seeds=[1], train_args=["--task", "mrpc"])
    with pytest.raises(UserError, match=r"a sweep started with other options \(not --task rte, now --task mrpc\); continue"):
        sweep(other, str(tmp_path / "sweep"))
    write_json(folder.file("sweep-config.json"), {"train_args": ["--data-dir", str(tmp_path)],
                                                  "decoupled_weight_decay": False, **grid})
    with pytest.raises(UserError, match="a sweep started without --decoupled-weight-decay"):
        sweep(SweepConfig(grid={"lr": [1e-4], "wd": [1e-5]}, seeds=[1], train_args=["--data-dir", str(tmp_path)],
                          decoupled_weight_decay=True), str(tmp_path / "sweep"))
    from modernbert_glue.training.sweep import _check_same_sweep

    for same in (f"{tmp_path}/", f"{tmp_path}/../{tmp_path.name}"):  # the same folder, written otherwise
        _check_same_sweep(tmp_path / "sweep", SweepConfig(grid={"lr": [1e-4]}, seeds=[1],
                                                          train_args=["--data-dir", same]))
    # The grid may change its values (new ones run, dropped ones left out of the table: said), not its options
    write_json(folder.file("sweep-config.json"), {"train_args": [], "decoupled_weight_decay": False,
                                                  "grid": {"lr": [1e-4, 2e-4]}, "seeds": [1, 2]})
    _check_same_sweep(tmp_path / "sweep", SweepConfig(grid={"lr": [3e-4, 2e-4, 1e-4]}, seeds=[1, 2, 3]))
    assert not caplog.records
    _check_same_sweep(tmp_path / "sweep", SweepConfig(grid={"lr": [1e-4]}, seeds=[2]))
    assert caplog.records[-1].getMessage() == ("sweep: --lr 0.0002, --seeds 1 left out of this grid: the table leaves "
                                               "out their runs (their folders stay)")
    with pytest.raises(UserError, match="a sweep over --lr; continue it over"):
        _check_same_sweep(tmp_path / "sweep", SweepConfig(grid={"lr": [1e-4, 2e-4], "ep": [1.0]}, seeds=[1, 2]))
    (tmp_path / "sweep" / "sweep-config.json").write_text("garbage")  # was read as "no options to compare"
    with pytest.raises(UserError, match=r"sweep-config.json: not valid JSON"):
        _check_same_sweep(tmp_path / "sweep", SweepConfig(grid={"lr": [1e-4]}, seeds=[1]))


def test_a_finished_runs_damaged_result_stops_the_sweep_before_it_writes(tmp_path):
    """Its metrics.json was a JSONDecodeError traceback, after the sweep had marked itself unfinished."""
    from modernbert_glue.errors import UserError
    from modernbert_glue.outputs import open_output, write_json
    from modernbert_glue.training.sweep import sweep

    cfg = SweepConfig(grid={"lr": [1e-4]}, seeds=[1], train_args=["--task", "rte"])
    folder = open_output(tmp_path / "sweep", "sweep")
    folder.claim("lr=0.0001-seed-1")
    write_json(folder.file("sweep-config.json"), {"train_args": ["--task", "rte"], "decoupled_weight_decay": False,
                                                  "grid": cfg.grid, "seeds": cfg.seeds})
    run = open_output(tmp_path / "sweep" / "lr=0.0001-seed-1", "run")
    run.claim("metrics.json")
    (tmp_path / "sweep" / "lr=0.0001-seed-1" / "metrics.json").write_text('{"corrupt')
    run.finish()
    folder.finish()
    before = {p.name: p.read_bytes() for p in (tmp_path / "sweep").iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"lr=0.0001-seed-1/metrics.json: not valid JSON .*; move .* away and the "
                                        r"same command runs it again$"):
        sweep(cfg, str(tmp_path / "sweep"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "sweep").iterdir() if p.is_file()} == before


def test_a_diverging_config_is_recorded_as_failed_and_not_chosen(tmp_path):
    """lr 1e30 makes the loss NaN: that run stops for good (failure.json), the sweep still finishes and chooses
    among the configs whose every seed finished, a second launch does not run it again (launched with that config
    alone, every config has failed: the table is finished and the sweep says so), and --resume says why."""
    data = glue_folder(tmp_path, "rte", 32, 16)
    out = tmp_path / "sweep"

    def args(lrs):
        return ["sweep", "--task", "rte", "--data-dir", data, "--model", MODERNBERT, "--random-init", *TINY_ARGS,
                "--max-train-samples", "32", "--max-eval-samples", "16", "--batch-size", "16",  # 2 steps
                "--set", "train.logging_steps=1", "--lr", lrs, "--epochs", "1", "--seeds", "7",
                "--output-dir", out, *TWO_AT_ONCE]

    code, stdout, stderr = run_cli(*args("1e-3,1e30"), timeout=HANG_GUARD_S)
    assert code == 0, stderr[-3000:]
    summary = json.loads((out / "sweep.json").read_text())
    failed = summary["configs"]["lr=1e+30,ep=1"]
    assert failed["values"] == {"7": None} and failed["mean"] is None
    assert failed["failed"]["7"].startswith("the dev loss is nan at step 2 of 2: the model diverged")
    assert summary["chosen"]["name"] == json.loads(stdout)["name"] == "lr=0.001,ep=1"
    assert summary["eval_samples"] == [16] and (out / "sweep.md").read_text() in stderr  # the table, on stderr
    assert "| lr=1e+30,ep=1 | failed | failed | failed | failed |" in (out / "sweep.md").read_text()
    # compare and glue-submission take the sweep as its chosen config's seeds (a seed set named after the config)
    (chosen,), (summary,) = load_runs([str(out)])
    assert chosen.folder == out / "lr=0.001,ep=1-seed-7" and chosen.seeds_folder == out / "lr=0.001,ep=1"
    assert summary["sweep_choice"] and summary["seeds"] == [7] and summary["folder"] == str(out / "lr=0.001,ep=1")
    assert summary["eval_accuracy_mean"] == chosen.metrics["eval_accuracy"]
    assert submission_model(str(out)) == out / "lr=0.001,ep=1-seed-7" / "model"
    metrics = json.loads((chosen.folder / "metrics.json").read_text())  # a hand-edited run: no model, no preset
    (chosen.folder / "metrics.json").write_text(json.dumps({k: v for k, v in metrics.items()
                                                            if k not in ("model", "preset")}))
    assert load_runs([str(out)])[1][0]["model"] is None  # (was a KeyError)
    (chosen.folder / "metrics.json").write_text(json.dumps(metrics))

    run = out / "lr=1e+30,ep=1-seed-7"
    recorded = (run / "failure.json").stat().st_mtime_ns
    code, stdout, stderr = run_cli(*args("1e30"), timeout=HANG_GUARD_S)
    assert code == 1 and stdout == ""
    assert (run / "failure.json").stat().st_mtime_ns == recorded  # an outcome, not an unfinished run
    assert stderr.strip().splitlines()[-1] == (
        f"error: sweep: every config has a failed run, so none is chosen ({out / 'sweep.md'} shows why; "
        "failure.json in each run folder)")
    assert json.loads((out / "sweep.json").read_text())["chosen"] is None and read_marker(out)["complete"]
    assert "| lr=1e+30,ep=1 | failed |" in (out / "sweep.md").read_text()
    with pytest.raises(UserError, match=r"sweep.json: no config was chosen \(every config has a failed run\)"):
        load_runs([str(out)])
    code, _, stderr = run_cli("train", "--resume", run)
    assert code == 2 and stderr.strip().splitlines()[-1].startswith(f"error: {run}: the dev loss is nan")
    code, _, stderr = run_cli("compare", run, out / "lr=0.001,ep=1-seed-7", "--output", tmp_path / "report")
    assert code == 2 and f"error: {run}: unfinished run folder: the dev loss is nan" in stderr


@pytest.mark.parametrize("to", ["group", "launcher"])
def test_sigterm_stops_a_sweep_and_its_run_in_progress(tmp_path, to):
    """SIGTERM to the sweep's process group (a scheduler, or Ctrl-C's SIGINT from a terminal) or to the launcher
    alone (a container's stop): no new run starts, the run in progress checkpoints and stops (the launcher sends the
    signal on; a run that had it already takes the two as one), the launcher ends with one line and exit code 143,
    and (checked once) the same command then resumes that run from its checkpoint and finishes the sweep."""
    data = glue_folder(tmp_path, "rte", 128, 16)
    out = tmp_path / "sweep"
    longer = ("--max-train-samples", "128", "--set", "train.batch_size=4", "--set", "train.checkpoint_steps=8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen([*CLI, *map(str, sweep_args(data, out, "1e-4,1e-3", *longer))], env=env,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = out / "lr=0.0001,ep=1-seed-7"
    deadline = time.monotonic() + HANG_GUARD_S
    while not (first / "checkpoints").is_dir() or not any((first / "checkpoints").iterdir()):  # step 8 of 32
        assert proc.poll() is None and time.monotonic() < deadline, "the first run did not checkpoint"
        time.sleep(0.05)
    (os.killpg if to == "group" else os.kill)(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 143, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (
        f"error: {out}: stopped by SIGTERM, after the runs in progress ended: the same `modernbert-glue sweep` "
        "command continues it")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [first.name]  # none started after the signal
    assert read_marker(first)["complete"] is False and "stopped by SIGTERM, checkpointed at step" in stderr
    assert len(json.loads((out / "timing.json").read_text())[first.name]) == 1
    if to == "group":
        return  # the same folder as the other case
    # continued with the first config alone (a grid may change): the resume, without the other run's minute
    code, stdout, stderr = run_cli(*sweep_args(data, out, "1e-4", *longer), timeout=HANG_GUARD_S)
    assert code == 0, stderr[-3000:]
    assert list(json.loads((out / "sweep.json").read_text())["configs"]) == ["lr=0.0001,ep=1"]
    assert json.loads((first / "metrics.json").read_text())["resumed_from_step"] > 8
    assert len(json.loads((out / "timing.json").read_text())[first.name]) == 2  # both launches' spans


def test_init_from_base_is_matched_by_alias_path_or_set(tmp_path, monkeypatch):
    """The base a --init-from run recorded, matched however --model names it (an alias, a relative path), and a
    --set model.name naming another base refused as --model is."""
    from modernbert_glue.config import resolve_run_config
    from modernbert_glue.training.lifecycle import with_init_from_base

    model = tmp_path / "first" / "model"
    model.mkdir(parents=True)
    (model.parent / "metrics.json").write_text(json.dumps({"model": "sentence-transformers/all-MiniLM-L6-v2",
                                                           "random_init": False}))
    cfg = resolve_run_config(None, {"model.name": "all-MiniLM-L6-v2", "model.init_from": str(model)})
    assert with_init_from_base(cfg, None, model_given=True, random_init_given=False).model.name == \
        "sentence-transformers/all-MiniLM-L6-v2"
    (model.parent / "metrics.json").write_text(json.dumps({"model": str(MODERNBERT), "random_init": True}))
    monkeypatch.chdir(MODERNBERT.parent)
    cfg = resolve_run_config(None, {"model.name": MODERNBERT.name, "model.init_from": str(model)})
    assert with_init_from_base(cfg, None, model_given=True, random_init_given=False).model.random_init is True
    code, _, stderr = run_cli("train", "--init-from", model, "--set", "model.name=other/model", "--check")
    assert code == 2 and "--model other/model: --init-from" in stderr.strip().splitlines()[-1], stderr[-800:]


def test_the_table_shows_no_spread_for_one_seed_and_failed_for_a_failed_config():
    from modernbert_glue.training.sweep import table

    summary = {"metric": "accuracy", "rule": "r", "chosen": {"name": "lr=0.001"}, "configs": {
        "lr=0.001": {"values": {"7": 0.6}, "mean": 0.6, "median": 0.6, "std": None},
        "lr=1e+30": {"values": {"7": None}, "mean": None, "median": None, "std": None}}}
    lines = table(summary).splitlines()
    assert lines[-2] == "| lr=0.001 **(chosen)** | 0.6000 | 0.6000 | 0.6000 | – |"
    assert lines[-1] == "| lr=1e+30 | failed | failed | failed | failed |"
    assert lines[0].startswith("Main dev metric: accuracy; chosen by r.")  # a summary of before eval_samples
    summary["eval_samples"] = [64]  # a --max-eval-samples sweep's scores are of part of the dev set: it says so
    assert table(summary).startswith("Main dev metric: accuracy (on 64 dev examples); chosen by r.")


def test_the_data_root_may_name_its_folders_as_glues_download_script_does(tmp_path):
    from modernbert_glue.submission import task_folder

    for name in ("SST-2", "MNLI", "diagnostic", "rte"):
        (tmp_path / name).mkdir()
    assert [task_folder(tmp_path, t).name for t in ("sst2", "mnli", "ax", "rte", "cola")] == [
        "SST-2", "MNLI", "diagnostic", "rte", "cola"]  # cola: neither exists, ours is named in the error
