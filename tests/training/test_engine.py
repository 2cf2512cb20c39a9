"""`train --engine engine` on CPU (eager steps; CUDA graphs are GPU only): the Trainer path's run folder, without
`datasets`; SIGKILL mid-epoch and `--resume` to the run an uninterrupted one gives; the fallback to the Trainer."""

import json
import shutil

import pytest

from modernbert_glue.config import load_config
from modernbert_glue.errors import UserError
from modernbert_glue.training.checkpoints import checkpoint_step, complete_checkpoints
from modernbert_glue.training.dispatch import choose

from ..conftest import MODERNBERT, TINY_ARGS, gpu_image_env, run_cli, tiny_train_args
from .test_resume import assert_same_run, assert_whole_training_time, killed_run, stop_and_resume

LOSS_KEYS = {"loss", "grad_norm", "learning_rate", "epoch", "step"}


def _files(folder):
    """Names in a run folder (TensorBoard event files by kind: their names carry a time and a host)."""
    return {str(p.relative_to(folder)) if p.parent.name != "logs" else "logs/events"
            for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def gpu_image(tmp_path_factory):
    """The GPU image's packages: no `datasets` (nor the server's fastapi/uvicorn)."""
    return gpu_image_env(tmp_path_factory.mktemp("gpu-image"))


def test_engine_writes_the_trainer_paths_run_folder_without_datasets(tiny_run, small_sst2, tmp_path, gpu_image):
    out = tmp_path / "engine"
    code, stdout, stderr = run_cli(*tiny_train_args(small_sst2, out, "--engine", "engine", "--epochs", "1",
                                                    "--max-train-samples", "64", "--max-eval-samples", "32"),
                                   env=gpu_image, separate=True)  # its own process: its own imports
    assert code == 0, stderr[-3000:]
    metrics = json.loads(stdout)
    assert metrics["engine"] == "engine" and metrics["input_path"] == "packed" and metrics["steps"] == 4
    # progress a device run's log keeps even if it is cut short: the preparation's and the loop's times
    assert "prepared in" in stderr and "engine: 4 steps in" in stderr and "4/4" in stderr  # and the bar
    trainer = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics.keys() == trainer.keys() and trainer["engine"] == "trainer"
    assert _files(out) == _files(tiny_run) and not (out / "checkpoints").exists()
    assert (out / "model/inference.json").read_text() == (tiny_run / "model/inference.json").read_text()
    configs = [json.loads((d / "model/config.json").read_text()) for d in (out, tiny_run)]
    assert configs[0] == configs[1]  # the model's config as the Trainer saves it (use_cache among it)
    run = json.loads((out / "run.json").read_text())
    assert run["engine"] == "engine" and run["config"]["train"]["engine"] == "engine"

    ours, theirs = (json.loads((d / "log_history.json").read_text()) for d in (out, tiny_run))
    kinds = lambda history: {frozenset(e) for e in history if "loss" in e or "eval_loss" in e}  # noqa: E731
    assert kinds(ours["log_history"]) == kinds(theirs["log_history"])
    assert {frozenset(LOSS_KEYS)} < kinds(ours["log_history"])
    assert _board_tags(tiny_run) - _board_tags(out) == {"train/total_flos"}  # TensorBoard: the Trainer's scalars
    engine = ours["engine"]
    assert len(engine["step_losses"]) == 4 and engine["cuda_graphs"] is None and engine["compile"] is False
    assert set(engine["step_shapes"]) and 0 <= engine["padding_fraction"] < 1
    # On a CPU checkpoints are written in the foreground: the loop's time in them is counted, within train_seconds
    assert 0 < engine["checkpoint_blocked_seconds"] <= metrics["train_seconds"]


def _resume_args(data_dir, out, *extra):
    """96 sentences, batch 16: 6 steps an epoch, 2 epochs; evaluations (and checkpoints) every 3 steps, more
    checkpoints every 2, an EMA of the weights."""
    return ["train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", data_dir,
            "--output-dir", out, "--engine", "engine", "--max-train-samples", "96", "--max-eval-samples", "32",
            "--epochs", "2", "--batch-size", "16", "--lr", "1e-3", "--set", "train.logging_steps=2",
            "--set", "train.warmup_ratio=0.1", "--set", "train.ema_decay=0.9", "--set", "train.checkpoint_steps=2",
            *extra]


@pytest.fixture(scope="module")
def uninterrupted(small_sst2, tmp_path_factory):
    out = tmp_path_factory.mktemp("engine-resume") / "whole"
    code, _, stderr = run_cli(*_resume_args(small_sst2, out))
    assert code == 0, stderr[-3000:]
    return out


def test_engine_sigkill_then_resume_equals_an_uninterrupted_run(uninterrupted, small_sst2, tmp_path):
    out = tmp_path / "killed"
    proc = killed_run(*_resume_args(small_sst2, out), step=7)  # epoch 2; the last checkpoint is step 6's
    assert proc.returncode == -9, proc.stderr[-2000:]
    last = complete_checkpoints(out)[-1]
    assert checkpoint_step(last) == 6
    shutil.copytree(last, tmp_path / "checkpoint-6")  # its recorded seconds, read after finishing removed it
    code, stdout, stderr = run_cli("train", "--resume", out)
    assert code == 0, stderr[-3000:]
    metrics = json.loads(stdout)
    assert metrics["resumed_from_step"] == 6 and metrics["steps"] == 12 and metrics["engine"] == "engine"
    assert_same_run(out, uninterrupted)
    assert_whole_training_time(tmp_path / "checkpoint-6", metrics)
    ours, theirs = (json.loads((d / "log_history.json").read_text())["engine"] for d in (out, uninterrupted))
    assert ours["step_losses"] == pytest.approx(theirs["step_losses"], abs=1e-6)


def test_engine_ctrl_c_checkpoints_the_step_in_progress_and_resume_equals_an_uninterrupted_run(
        uninterrupted, small_sst2, tmp_path):
    """Ctrl-C at the end of step 6: step 7 has no checkpoint of its own, and gets one; exit code 130."""
    out = tmp_path / "stopped"
    stop_and_resume(_resume_args(small_sst2, out), out, uninterrupted, sig="SIGINT", step=6, total=12)
    ours, theirs = (json.loads((d / "log_history.json").read_text())["engine"] for d in (out, uninterrupted))
    assert ours["step_losses"] == pytest.approx(theirs["step_losses"], abs=1e-6)


def test_an_option_the_engine_lacks_falls_back_to_the_trainer_with_one_line(small_sst2, tmp_path):
    code, stdout, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir",
                                   small_sst2, "--max-train-samples", "32", "--max-eval-samples", "16", "--epochs",
                                   "1", "--batch-size", "16", "--engine", "engine", "--input-path", "grouped",
                                   "--output-dir", tmp_path / "fallback")
    assert code == 0, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if "training with the HF Trainer instead" in line]
    assert len(lines) == 1 and "train.input_path = grouped" in lines[0], lines
    assert json.loads(stdout)["engine"] == "trainer"
    code, _, stderr = run_cli("train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2,
                              "--engine", "engine", "--input-path", "grouped", "--check")
    said = lines[0].split(" engine: ", 1)[1]  # (after the time and logger)
    assert code == 0 and f"engine: {said}" in stderr, stderr[-2000:]  # --check says it too (it said "ok" alone)


def test_which_loop_trains():
    cfg = load_config("paper")

    def pick(cfg, device, world=1, kind="modernbert"):
        return choose(cfg, device, world, lambda: kind)

    assert pick(cfg, "cpu") == ("trainer", None)  # auto: the Trainer on a CPU
    assert pick(cfg, "cuda") == ("engine", None) and pick(cfg, "cuda", kind="bert") == ("engine", None)
    engine, reason = pick(cfg, "cuda", world=2)
    assert engine == "trainer" and reason.startswith("WORLD_SIZE=2")
    engine, reason = pick(cfg, "cuda", kind="distilbert")
    assert engine == "trainer" and "model type 'distilbert'" in reason
    forced = load_config("paper", {"train.engine": "engine", "train.input_path": "padded"})
    engine, reason = pick(forced, "cuda")
    assert engine == "trainer" and reason.startswith("train.input_path = padded")
    assert pick(load_config("paper", {"train.engine": "trainer"}), "cuda") == ("trainer", None)
    with pytest.raises(UserError, match="train.engine must be one of auto, engine, trainer"):
        pick(load_config("paper", {"train.engine": "fast"}), "cuda")
    with pytest.raises(UserError, match="train.compile must be auto, on or off"):
        pick(load_config("paper", {"train.compile": "max"}), "cpu")


def _board_tags(run) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = EventAccumulator(str(run / "logs"))
    board.Reload()
    return set(board.Tags()["scalars"])
