"""Kill training with SIGKILL mid-epoch, resume it, and get the run an uninterrupted one gives.

Tolerance: weights and metrics within 1e-6 absolute (the same computation on the same machine; the resumed
run restores weights, optimizer, scheduler, RNG, EMA and data order exactly). Timing keys are excluded.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from modernbert_glue.errors import UserError
from modernbert_glue.outputs import read_marker
from modernbert_glue.training import stopping

from ..conftest import MODERNBERT, TINY_ARGS, run_cli

KILLER = Path(__file__).with_name("kill_at_step.py")
TIMING = {"train_seconds", "train_seconds_before", "train_samples_per_second", "infer_sentences_per_second",
          "peak_memory_mb", "resumed_from_step"}


def killed_run(*args, step: int, within: str = "", sig: str = "SIGKILL"):
    """The CLI under tests/kill_at_step.py, sent `sig` at the end of training step `step` (of the run whose
    folder path contains `within`)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "KILL_AT_STEP": str(step),
           "KILL_WITHIN": within, "KILL_SIGNAL": sig}
    return subprocess.run([sys.executable, str(KILLER), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def ema_args(data_dir, out, *extra):
    """160 sentences, batch 16: 10 steps an epoch, 3 epochs; evaluations every 5 steps, checkpoints every 3."""
    return ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", data_dir,
            "--output-dir", out, "--epochs", "3", "--batch-size", "16", "--lr", "1e-3", "--max-train-samples", "160",
            "--set", "train.logging_steps=5", "--set", "train.warmup_ratio=0.1", "--set", "train.ema_decay=0.9",
            "--set", "train.checkpoint_steps=3", *extra]


def assert_same_run(a: Path, b: Path, stopped_at: int | None = None):
    """Run `a` equals run `b`. `stopped_at`: `a` was stopped by a signal at that step, whose checkpoint logged the
    loss window up to it, so the window of `b` around that step is two in `a` (metrics' train_loss weighs the
    windows by their steps, and stays the same)."""
    ma, mb = (json.loads((d / "metrics.json").read_text()) for d in (a, b))
    assert ma.keys() == mb.keys()
    for key in ma.keys() - TIMING:
        if isinstance(ma[key], float) or isinstance(ma[key], list):
            assert ma[key] == pytest.approx(mb[key], abs=1e-6), key
        else:
            assert ma[key] == mb[key], key
    wa, wb = (load_file(str(d / "model/model.safetensors")) for d in (a, b))
    assert wa.keys() == wb.keys()
    worst = max(float(np.abs(wa[k] - wb[k]).max()) for k in wa)
    assert worst <= 1e-6, worst
    la, lb = (json.loads((d / "log_history.json").read_text())["log_history"] for d in (a, b))
    for history, metrics in ((la, ma), (lb, mb)):  # the Trainer's summary was the last launch's loss alone
        summary = [e["train_loss"] for e in history if "train_loss" in e]
        assert summary[-1:] in ([], [pytest.approx(metrics["train_loss"], abs=1e-6)]), (summary, metrics["train_loss"])
    losses = lambda h: [(e["step"], e["loss"]) for e in h if "loss" in e]  # noqa: E731
    la, lb = losses(la), losses(lb)
    if stopped_at is not None:
        assert stopped_at in [s for s, _ in la] and stopped_at not in [s for s, _ in lb]
        after = min(s for s, _ in lb if s > stopped_at)  # b's window that a split in two
        la = [(s, v) for s, v in la if not stopped_at <= s <= after]
        lb = [(s, v) for s, v in lb if s != after]
    assert [s for s, _ in la] == [s for s, _ in lb]
    assert np.allclose([v for _, v in la], [v for _, v in lb], atol=1e-6)


@pytest.fixture(scope="module")
def uninterrupted(small_sst2, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "whole"
    code, _, stderr = run_cli(*ema_args(small_sst2, out))
    assert code == 0, stderr[-3000:]
    return out


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(uninterrupted, small_sst2, tmp_path):
    out = tmp_path / "killed"
    proc = killed_run(*ema_args(small_sst2, out), step=17)  # epoch 2 of 3; the last checkpoint is step 15's
    assert proc.returncode == -9, proc.stderr[-2000:]
    marker = json.loads((out / ".modernbert-glue.json").read_text())
    assert marker["kind"] == "run" and marker["complete"] is False
    assert not (out / "metrics.json").exists() and (out / "run.json").is_file()
    done = sorted(p.name for p in (out / "checkpoints").iterdir() if (p / "complete").is_file())
    assert "checkpoint-15" in done and all(int(n.split("-")[1]) <= 15 for n in done), done
    kept = tmp_path / "checkpoint-15"  # finishing removes the checkpoints: the seconds it recorded, read after
    shutil.copytree(out / "checkpoints" / "checkpoint-15", kept)

    # Readers refuse the unfinished folder with one line; a plain `train` into it says how to continue.
    code, _, stderr = run_cli("compare", out, "--output", tmp_path / "report")
    assert code == 2 and stderr.strip().splitlines()[-1].startswith(f"error: {out}: unfinished run")
    code, _, stderr = run_cli(*ema_args(small_sst2, out))
    assert code == 2 and "pass --resume to continue it, --overwrite" in stderr
    code, _, stderr = run_cli("train", "--resume", out, "--lr", "0.002")
    assert code == 2 and "another config (train.lr is 0.001 there, 0.002 here)" in stderr

    threads = torch.get_num_threads()  # the count it ran with (0 saved: torch's default), now named
    code, stdout, stderr = run_cli("train", "--resume", out, "--set", f"train.threads={threads}")
    assert code == 0, stderr[-3000:]
    metrics = json.loads(stdout)
    assert metrics["resumed_from_step"] == 15 and metrics["steps"] == 30
    assert_same_run(out, uninterrupted)
    assert_whole_training_time(kept, metrics)
    assert json.loads((uninterrupted / "metrics.json").read_text())["train_seconds_before"] == 0.0
    assert not (out / "checkpoints").exists()  # training succeeded: only the best model is kept
    run = json.loads((out / "run.json").read_text())
    assert run["resumed"][0]["from_step"] == 15 and run["config"]["train"]["ema_decay"] == 0.9
    assert run["resumed"][0]["config_changes"] == {"train.threads": threads} and run["config"]["train"]["threads"] == 0
    for options in ((), ("--lr", "1e-3")):  # with other options too: finished, not "another config"
        code, _, stderr = run_cli("train", "--resume", out, *options)
        assert code == 2 and "finished already; nothing to resume" in stderr, stderr


def assert_whole_training_time(checkpoint: Path, metrics: dict) -> None:
    """The checkpoint a run resumed from recorded its training seconds so far: the finished run's train_seconds is
    those plus the last launch's (the work a kill lost is trained again, and counted once)."""
    before = json.loads((checkpoint / "train_seconds.json").read_text())["train_seconds"]
    assert before > 0 and metrics["train_seconds_before"] == pytest.approx(before)
    assert metrics["train_seconds"] > before


def stop_and_resume(args: list, out: Path, uninterrupted: Path, *, sig: str, step: int, total: int) -> None:
    """Send `sig` at the end of step `step`: step + 1 is checkpointed and the run stops with one line and exit
    code 128 + the signal's number; `--resume` from step + 1 gives the uninterrupted run."""
    import signal

    proc = killed_run(*args, step=step, sig=sig)
    assert proc.returncode == 128 + signal.Signals[sig], proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {out}: stopped by {sig}, checkpointed at step {step + 1} of {total}: "
        f"`modernbert-glue train --resume {out}` continues the run")
    assert "Traceback" not in proc.stderr and not (out / "metrics.json").exists()
    code, stdout, stderr = run_cli("train", "--resume", out)
    assert code == 0, stderr[-3000:]
    assert json.loads(stdout)["resumed_from_step"] == step + 1
    assert_same_run(out, uninterrupted, stopped_at=step + 1)


def test_sigterm_checkpoints_the_step_in_progress_and_resume_equals_an_uninterrupted_run(uninterrupted, small_sst2,
                                                                                          tmp_path):
    """A scheduler's SIGTERM at the end of step 16: step 17 has no checkpoint of its own, and gets one."""
    out = tmp_path / "stopped"
    stop_and_resume(ema_args(small_sst2, out), out, uninterrupted, sig="SIGTERM", step=16, total=30)


def test_a_second_signal_stops_at_once(small_sst2, tmp_path):
    """Ctrl-C twice: the second does what Ctrl-C does without the graceful stop (KeyboardInterrupt: "error:
    interrupted", exit code 130) and no checkpoint of the step in progress is written."""
    script = ("import os, signal, sys\n"
              "from modernbert_glue.training import stopping\n"
              "with stopping.graceful_stop():\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    assert stopping.requested(0, 1)\n"
              "    try:\n"
              "        os.kill(os.getpid(), signal.SIGINT)\n"
              "        [0 for _ in range(10**6)]  # the handler runs between bytecodes\n"
              "    except KeyboardInterrupt:\n"
              "        print('interrupted at once')\n"
              "assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "interrupted at once\n", proc.stderr


def in_a_sweeps_run(script: str) -> subprocess.CompletedProcess:
    """`script` run as a sweep starts its runs: with stopping.FORWARDED_ENV set."""
    env = {**os.environ, stopping.FORWARDED_ENV: "1"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)


def test_in_a_sweeps_run_the_forwarded_copy_of_a_signal_is_the_same_request():
    """A sweep's run gets Ctrl-C from the terminal and again from its launcher, the copy possibly handled only
    when a long operation returns: one request, the step still checkpointed. Without the sweep's variable the
    second stops at once (the test above)."""
    script = ("import os, signal, time\n"
              "from modernbert_glue.training import stopping\n"
              "with stopping.graceful_stop():\n"
              "    os.kill(os.getpid(), signal.SIGINT)\n"
              "    time.sleep(1.5)  # the copy is handled well after the first\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    [0 for _ in range(10**5)]\n"
              "    assert stopping.requested(0, 1)\n"
              "print('one request')\n")
    proc = in_a_sweeps_run(script)
    assert proc.returncode == 0 and proc.stdout == "one request\n", proc.stderr


def test_a_signal_sent_twice_at_once_during_the_final_save_stops_with_one_line(tmp_path):
    """In a sweep's run, the forward of the group's SIGTERM arrives while the first one's error unwinds: ignored,
    not a kill (the handler stays until the block is left)."""
    script = ("import os, signal\n"
              "from pathlib import Path\n"
              "from modernbert_glue.training import stopping\n"
              "try:\n"
              f"    with stopping.stop_at_once(Path({str(tmp_path)!r}) / 'run', 'during the final save'):\n"
              "        try:\n"
              "            os.kill(os.getpid(), signal.SIGTERM)\n"
              "            [0 for _ in range(10**6)]\n"
              "        finally:  # the forwarded copy\n"
              "            os.kill(os.getpid(), signal.SIGTERM)\n"
              "            [0 for _ in range(10**5)]\n"
              "except Exception as error:\n"
              "    print(error.exit_code, error)\n")
    proc = in_a_sweeps_run(script)
    assert proc.returncode == 0 and proc.stdout.startswith("143 ") and "stopped by SIGTERM" in proc.stdout, proc


def test_a_signal_at_the_last_step_lets_the_run_finish(small_sst2, tmp_path):
    out = tmp_path / "finished"
    proc = killed_run(*ema_args(small_sst2, out), step=30, sig="SIGTERM")  # 30 of 30
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_marker(out)["complete"] is True


@pytest.mark.parametrize("engine", ["trainer", "engine"])
def test_a_signal_during_the_final_evaluation_stops_at_once_and_resume_finishes(uninterrupted, small_sst2, tmp_path,
                                                                                engine):
    """The final evaluation and save can outlast a scheduler's grace period: a signal there stops the run at once
    with one line, the folder unfinished with its checkpoints; --resume evaluates and saves it."""
    out = tmp_path / "stopped"
    proc = killed_run(*ema_args(small_sst2, out, "--engine", engine), step="final", sig="SIGTERM")
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {out}: stopped by SIGTERM, during the final evaluation and save: `modernbert-glue train --resume "
        f"{out}` continues the run")
    assert read_marker(out)["complete"] is False and not (out / "metrics.json").exists()
    assert not list(out.glob(".*.tmp-*")) and (out / "checkpoints").is_dir()
    code, stdout, stderr = run_cli("train", "--resume", out)
    assert code == 0, stderr[-3000:]
    metrics = json.loads(stdout)
    assert metrics["resumed_from_step"] == 30 and metrics["train_samples_per_second"] is None  # no step: no rate
    if engine == "trainer":
        assert_same_run(out, uninterrupted)


def test_a_signal_the_process_was_started_ignoring_stays_ignored():
    """A script's background job starts with Ctrl-C ignored: it must not stop its trainings."""
    script = ("import signal\n"
              "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
              "from modernbert_glue.training import stopping\n"
              "with stopping.graceful_stop():\n"
              "    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN\n"
              "    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL\n"
              "assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
              "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout == "ok\n", proc.stderr


def test_seeds_resume_seed_by_seed(small_sst2, tmp_path):
    out = tmp_path / "seeds"
    args = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
            "--max-train-samples", "64", "--max-eval-samples", "32", "--epochs", "2", "--batch-size", "16",
            "--set", "train.checkpoint_steps=2", "--seeds", "1,2", "--output-dir", out]
    proc = killed_run(*args, step=5, within="seed-2")
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert json.loads((out / "seed-1/.modernbert-glue.json").read_text())["complete"] is True
    assert json.loads((out / "seed-2/.modernbert-glue.json").read_text())["complete"] is False
    seed1 = (out / "seed-1/metrics.json").read_bytes()
    code, stdout, stderr = run_cli("train", "--resume", out)
    assert code == 0, stderr[-3000:]
    summary = json.loads(stdout)
    assert summary["seeds"] == [1, 2] and (out / "seeds.json").is_file()
    assert (out / "seed-1/metrics.json").read_bytes() == seed1  # the finished seed was kept, not re-run
    assert json.loads((out / "seed-2/metrics.json").read_text())["resumed_from_step"] == 4
    assert json.loads((out / ".modernbert-glue.json").read_text())["complete"] is True


def test_a_signal_at_a_seeds_last_step_stops_the_set_after_that_seed(small_sst2, tmp_path):
    """SIGTERM at seed 1's last step: seed 1 finishes, seed 2 does not start, and --resume runs seed 2."""
    out = tmp_path / "seeds"
    args = ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
            "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16",
            "--seeds", "1,2", "--output-dir", out]
    proc = killed_run(*args, step=2, within="seed-1", sig="SIGTERM")  # 2 of 2
    assert proc.returncode == 143, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: {out}: stopped by SIGTERM, after seed 1 finished (1 of 2 seeds): `modernbert-glue train --resume "
        f"{out}` continues the run")
    assert read_marker(out / "seed-1")["complete"] and not (out / "seed-2").exists()
    code, stdout, stderr = run_cli("train", "--resume", out)
    assert code == 0, stderr[-3000:]
    assert json.loads(stdout)["seeds"] == [1, 2] and read_marker(out)["complete"]


def test_resume_accepts_the_init_from_template_the_run_started_with(tmp_path):
    """run.json holds --init-from with {seed} filled in; the same template given again with --resume matches it,
    another one does not."""
    from dataclasses import replace

    from modernbert_glue.config import RunConfig
    from modernbert_glue.errors import UserError
    from modernbert_glue.training.runs import config_for_resume

    def init_from(cfg, path):
        return replace(cfg, model=replace(cfg.model, init_from=path))

    started = replace(init_from(RunConfig(), "src/seed-42/model"), train=replace(RunConfig().train, seed=42))
    (tmp_path / "run.json").write_text(json.dumps({"config": started.to_dict()}))
    resumed = config_for_resume(str(tmp_path), lambda saved: init_from(saved, "src/seed-{seed}/model"))
    assert resumed.model.init_from == "src/seed-42/model"
    with pytest.raises(UserError, match="model.init_from is 'src/seed-42/model' there, 'elsewhere/seed-42/model' here"):
        config_for_resume(str(tmp_path), lambda saved: init_from(saved, "elsewhere/seed-{seed}/model"))


def test_resume_compares_paths_as_the_runs_read_them(tmp_path, monkeypatch):
    """A --seeds folder saves --init-from as given (a run folder, a {seed} template), a single run as read (RUN/model,
    the seed filled in); either resumes with the same option given again, relative or absolute."""
    from modernbert_glue.config import resolve_run_config
    from modernbert_glue.training.runs import config_for_resume

    base = tmp_path / "mnli"
    for seed in ("", "-1"):
        (tmp_path / f"mnli{seed}" / "model").mkdir(parents=True)
        (tmp_path / f"mnli{seed}" / "model" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    for init_from in (str(base), str(tmp_path / "mnli-{seed}" / "model")):
        options = {"model.init_from": init_from, "data.task": "rte", "train.seed": 1}
        folder = tmp_path / "seeds"
        folder.mkdir(exist_ok=True)
        (folder / "run.json").write_text(json.dumps({"config": resolve_run_config(None, options).to_dict()}))
        for given in (init_from, os.path.relpath(init_from)):
            again = {**options, "model.init_from": given}
            config_for_resume(str(folder), lambda saved: resolve_run_config(None, again, base=saved))  # noqa: B023
    with pytest.raises(UserError, match="holds an unfinished run of another config"):
        config_for_resume(str(folder), lambda saved: resolve_run_config(None, {"train.lr": 1.0}, base=saved))
    # how many threads it runs on may change (a sweep resumes its runs with its new --parallel's share)
    resumed = config_for_resume(str(folder), lambda saved: resolve_run_config(None, {"train.threads": 3}, base=saved))
    assert resumed.train.threads == 3 and resumed.train.seed == 1


@pytest.mark.parametrize("engine", ["trainer", "engine"])
def test_early_stopping_resumes_with_its_count_of_evaluations_without_improvement(small_sst2, tmp_path, engine):
    """lr 1e-12: no evaluation after the first improves, so patience 2 stops at step 15 (evaluations every 5 steps).
    Killed after step 10's checkpoint (count 1), the Trainer resumed counting from 0 and trained to step 20.
    Killed while saving the model after the stop, both loops trained on from step 15 to the next evaluation."""
    def args(out):
        return ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
                "--output-dir", out, "--epochs", "3", "--batch-size", "16", "--lr", "1e-12",
                "--max-train-samples", "160", "--set", "train.early_stopping_patience=2", "--engine", engine]

    code, stdout, stderr = run_cli(*args(tmp_path / "whole"))
    assert code == 0 and json.loads(stdout)["steps"] == 15, stderr[-2000:]
    # what was trained, not the 3 epochs asked for (10 steps an epoch), in metrics.json and in the model card
    assert json.loads(stdout)["epochs"] == 3 and json.loads(stdout)["epochs_trained"] == 1.5
    assert "batch 16, 3 epochs (early stopping ended it after 1.50), " in (tmp_path / "whole/model/README.md").read_text()
    for kill_at, resumed_from in ((12, 10), ("final", 15)):
        out = tmp_path / f"killed-{kill_at}"
        proc = killed_run(*args(out), step=kill_at)
        assert proc.returncode == -9, proc.stderr[-2000:]
        code, stdout, stderr = run_cli("train", "--resume", out)
        assert code == 0, stderr[-2000:]
        metrics = json.loads(stdout)
        assert (metrics["resumed_from_step"], metrics["steps"], metrics["epochs_trained"]) == (resumed_from, 15, 1.5)
        evaluations = [e["step"] for e in json.loads((out / "log_history.json").read_text())["log_history"]
                       if "eval_loss" in e]
        assert evaluations == [5, 10, 15]
        if kill_at == "final":  # the same model and metrics as the run not killed
            assert_same_run(out, tmp_path / "whole")


def test_a_run_resumes_only_with_the_count_of_processes_it_started_with(tmp_path, monkeypatch):
    """A torchrun run resumed in one process trained on silently: other batches, another run (steps 32 became 64)."""
    from modernbert_glue.config import load_config
    from modernbert_glue.outputs import open_output
    from modernbert_glue.training.lifecycle import check_run

    out = tmp_path / "run"
    open_output(out, "run").write_json("run.json", {"world_size": 2})  # an unfinished run of 2 processes
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(UserError, match=r"run: trained by 2 process\(es\), resumed by 1: resume it with `torchrun "
                                        r"--nproc_per_node 2`$"):
        check_run(load_config("paper"), out, overwrite=False, resume=True)
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert check_run(load_config("paper"), out, overwrite=False, resume=True)["command"]
