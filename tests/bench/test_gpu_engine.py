"""The engine's device script (benchmarks/gpu_engine.py) end to end on CPU with the tiny model: every file and
summary key the GPU run will be judged on. On CPU the engine runs eager fp32, so its first losses must equal the
eager reference loop's (same batches, seed and initial weights; the engine's padding to budgets changes nothing)."""

import json
import os
import subprocess
import sys

import pytest

from ..conftest import REPO, SST2, benchmark_module, gpu_image_env, write_tsv

SCRIPT = REPO / "benchmarks" / "gpu_engine.py"
SUMMARY_KEYS = {"device", "engine_train_seconds", "engine_wall_seconds", "speedup_over_plain_trainer",
                "engine_first_losses", "reference_losses", "loss_max_abs_difference",
                "plain_trainer_extrapolated_seconds", "plain_trainer_steady_ms_per_step",
                "bar_two_epochs_within_15_s", "bar_wall_within_60_s", "bar_5x_plain_trainer",
                "bar_loss_within_bf16_tolerance"}


def run_script(out, *extra, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), str(out), "--tiny", *map(str, extra)], capture_output=True,
                          text=True, timeout=600, check=False, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def device_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("sst2")
    for name, n in (("train.tsv", 128), ("dev.tsv", 48)):
        write_tsv(data / name, (SST2 / name).read_text(encoding="utf-8").splitlines()[: n + 1])
    out = tmp_path_factory.mktemp("gpu-engine") / "out"
    proc = run_script(out, "--data-dir", data, "--engine", "engine", "--anchor-steps", 3, "--reference-steps", 3,
                      "--profile", "--budget-seconds", 3600,  # the budget's own test is below; here every step runs
                      env=gpu_image_env(tmp_path_factory.mktemp("gpu-image")))  # as on the device
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_writes_its_files_and_summary(device_run):
    names = {p.name for p in device_run.iterdir()}
    assert names == {"engine_run.json", "engine.log", "plain_trainer.json", "reference.json", "profile.json",
                     "variant_run.json", "variant.log", "summary.json"} and len(names) <= 8
    summary = json.loads((device_run / "summary.json").read_text())
    assert SUMMARY_KEYS <= summary.keys() and summary["errors"] == {} and summary["gpu"] is False
    assert summary["engine_steps"] == 4 and summary["engine_train_seconds"] > 0  # 128 sentences, batch 64, 2 epochs
    assert summary["engine_wall_seconds"] > summary["engine_train_seconds"]
    assert 0 <= summary["engine_capture_seconds"] <= summary["engine_prepare_seconds"]
    assert 0 <= summary["engine_checkpoint_blocked_seconds"] <= summary["engine_train_seconds"]
    assert summary["engine_checkpoint_wait_seconds"] >= 0
    assert summary["engine_ms_per_step_between_logs"]["intervals"] == 3  # every step is logged: 4 marks
    assert summary["speedup_over_plain_trainer"] == pytest.approx(
        summary["plain_trainer_extrapolated_seconds"] / summary["engine_train_seconds"], abs=0.0051)  # 2 decimals
    assert summary["variant_sets"] == ["train.compile=off"] and summary["variant_train_seconds"] > 0
    variant = json.loads((device_run / "variant_run.json").read_text())
    assert variant["command"][-2:] == ["--set", "train.compile=off"] and variant["metrics"]["steps"] == 4
    anchor = json.loads((device_run / "plain_trainer.json").read_text())
    assert anchor["steps"] == 3 and anchor["two_epoch_steps"] == 4 and anchor["steady_ms_per_step"] > 0


def test_engine_losses_equal_the_eager_reference(device_run):
    summary = json.loads((device_run / "summary.json").read_text())
    assert summary["losses_compared"] == 3
    assert summary["loss_max_abs_difference"] <= 1e-4, (summary["engine_first_losses"], summary["reference_losses"])
    assert summary["loss_steps_within_bf16_tolerance"] == 3 and summary["bar_loss_within_bf16_tolerance"] is True


def test_loss_bar_holds_only_within_bf16_tolerance_over_every_expected_step():
    agreement = benchmark_module("gpu_engine").loss_agreement
    reference = [0.7, 0.69, 0.68]
    close = [0.705, 0.69 * 1.015, 0.68]  # within 1.6% of the reference
    assert agreement(close, reference, 3)["bar_loss_within_bf16_tolerance"] is True
    off = agreement([0.7, 0.69 * 1.02, 0.68], reference, 3)  # one step 2% off
    assert off["bar_loss_within_bf16_tolerance"] is False and off["loss_steps_within_bf16_tolerance"] == 2
    assert off["loss_max_abs_difference"] == pytest.approx(0.0138, abs=1e-5)
    assert off["loss_first_step_outside_bf16_tolerance"] == 2 and agreement(close, reference, 3)[
        "loss_first_step_outside_bf16_tolerance"] is None
    drift = [0.7 * (1.03 if i % 2 else 0.97) for i in range(40)]  # 3% either way each step: the mean holds
    windows = agreement(drift, [0.7] * 40, 40)
    assert windows["bar_loss_within_bf16_tolerance"] is False and windows["loss_20_step_means_within_bf16_tolerance"] \
        == "2 of 2" and agreement([0.8] * 40, [0.7] * 40, 40)["loss_20_step_means_within_bf16_tolerance"] == "0 of 2"
    assert agreement(close, reference, 200)["bar_loss_within_bf16_tolerance"] is None  # a cut comparison: no bar
    assert agreement([], [], 0)["bar_loss_within_bf16_tolerance"] is None


def test_loop_intervals_find_the_slowest_stretch_between_logged_steps():
    intervals = benchmark_module("gpu_engine").loop_intervals
    marks = [[0, 0.0], [50, 0.5], [100, 1.0], [150, 3.0], [200, 3.5]]  # a 2 s stall before step 150
    assert intervals(marks) == {"median": 10.0, "slowest": 40.0, "slowest_ending_at_step": 150, "intervals": 4}
    assert intervals([[50, 0.5]]) == {} and intervals([]) == {}


def test_profile_records_the_step(device_run):
    report = json.loads((device_run / "profile.json").read_text())
    assert report["cuda_graphs"] == 0 and report["capture"] == "CUDA graphs are GPU only" and report["sets"] == []
    eager = report["eager"]
    assert set(eager["regions_ms_per_step"]) == {"forward", "backward", "clip", "optimizer"}
    assert eager["cpu_ops_per_step"] > 0 and eager["ms_per_step"] > 0 and eager["top"]


@pytest.mark.slow  # a second whole run of the script: in `make test-slow`, out of the default suite
def test_an_engine_run_out_of_time_leaves_the_variant_and_profile_their_turn(tmp_path):
    """(c) past --engine-seconds (a compile too slow, say): the other steps still run, the variant first, and the
    profile with the variant's settings."""
    data = tmp_path / "sst2"
    data.mkdir()
    for name, n in (("train.tsv", 128), ("dev.tsv", 48)):
        write_tsv(data / name, (SST2 / name).read_text(encoding="utf-8").splitlines()[: n + 1])
    out = tmp_path / "out"
    proc = run_script(out, "--data-dir", data, "--engine", "engine", "--anchor-steps", 3, "--reference-steps", 3,
                      "--profile", "--engine-seconds", 1, "--budget-seconds", 3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["errors"] == {"engine": "timed out after 1 s"} and summary["engine_train_seconds"] is None
    assert summary["speedup_over_plain_trainer"] is None and summary["bar_5x_plain_trainer"] is None
    assert summary["variant_train_seconds"] > 0 and summary["bar_loss_within_bf16_tolerance"] is None
    assert json.loads((out / "profile.json").read_text())["sets"] == ["train.compile=off"]
    assert summary["variant_speedup_over_plain_trainer"] > 0
    order = [(out / name).stat().st_mtime_ns for name in ("variant_run.json", "plain_trainer.json", "profile.json")]
    assert order == sorted(order)  # the variant first, while the time is there


def test_refuses_a_non_empty_folder(device_run):
    proc = run_script(device_run)
    assert proc.returncode != 0 and "is not empty (results are not overwritten)" in proc.stderr
