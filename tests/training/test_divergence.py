"""A training loss that becomes NaN stops the run with one line, in both loops: the HF Trainer on its own would
log it as the mean of the earlier losses (often 0.0) and train on to a model that predicts one class."""

import re

import pytest

from modernbert_glue.outputs import failure, read_marker

from ..conftest import MODERNBERT, TINY_ARGS, run_cli


@pytest.mark.parametrize("engine", ["trainer", "engine"])
@pytest.mark.parametrize("what, sets", [
    ("training loss", ["train.logging_steps=1", "train.evals_per_epoch=1"]),  # logged at step 3, before any eval
    ("dev loss", ["train.logging_steps=100", "train.evals_per_epoch=2"]),  # the eval at step 2 sees it first
])
def test_a_nan_loss_stops_the_run_with_one_line(small_sst2, tmp_path, engine, what, sets):
    out = tmp_path / engine
    code, stdout, stderr = run_cli(
        "train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2, "--output-dir", out,
        "--max-train-samples", "64", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16",
        "--lr", "1e30", "--engine", engine, *(a for s in sets for a in ("--set", s)))  # overflows in 2-3 steps
    assert code == 1 and stdout == ""
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"error: {re.escape(str(out))}: the {what} is nan at step [1-4] of 4: the model diverged, "
                        r"so the run stopped \(resuming would repeat it\)\. Start it again with --overwrite and a "
                        r"lower learning rate \(train\.lr is 1e\+30\) or more warmup", last), last
    assert "Traceback" not in stderr
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    assert read_marker(out)["complete"] is False and failure(out) == last.split(": ", 2)[2]
    assert not (out / "checkpoints").exists()  # even the last one before the NaN holds unchecked weights


def test_a_diverged_seed_fails_the_seed_set(small_sst2, tmp_path):
    """Seed 1 diverges: seed 2 does not run, and the set is failed too (its mean would mix configs otherwise):
    --resume on it says why."""
    out = tmp_path / "seeds"
    code, _, stderr = run_cli(
        "train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", small_sst2, "--output-dir", out,
        "--max-train-samples", "64", "--max-eval-samples", "16", "--epochs", "1", "--batch-size", "16",
        "--lr", "1e30", "--set", "train.logging_steps=1", "--set", "train.evals_per_epoch=1", "--seeds", "1,2")
    last = stderr.strip().splitlines()[-1]
    assert code == 1 and last.startswith(f"error: {out}: seed 1: the training loss is nan at step "), last
    assert failure(out).startswith("seed 1: the training loss is nan") and not (out / "seed-2").exists()
    code, _, stderr = run_cli("train", "--resume", out)
    assert code == 2 and stderr.strip().splitlines()[-1].startswith(f"error: {out}: seed 1: the training loss")
