"""Issue 16's device script (benchmarks/gpu_sweep.py) on CPU with the tiny model: one run, then two at once through
`sweep`'s launcher, and the summary the device run will be judged on. Slow (three training processes, ~30 s): the
launcher itself is tested in the default run (tests/training/test_sweep.py)."""

import json
import subprocess
import sys

import pytest

from ..conftest import REPO, SST2, write_tsv

SCRIPT = REPO / "benchmarks" / "gpu_sweep.py"
pytestmark = pytest.mark.slow


def test_one_then_many_runs_and_their_throughput_ratio(tmp_path):
    data = tmp_path / "sst2"
    data.mkdir()
    for name, n in (("train.tsv", 64), ("dev.tsv", 16)):
        write_tsv(data / name, (SST2 / name).read_text(encoding="utf-8").splitlines()[: n + 1])
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out), "--tiny", "--data-dir", str(data), "--runs", "2",
                           "--steps", "2"], capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == 2 and summary["steps_per_run"] == 2 and summary["tiny"] is True
    assert summary["throughput_ratio"] == pytest.approx(
        summary["many_steps_per_second"] / summary["one_steps_per_second"], rel=0.02)
    assert summary["meets_bar"] == (summary["throughput_ratio"] >= summary["bar"])
    for phase, seeds in (("one", [1]), ("many", [1, 2])):
        finished = sorted((out / phase).glob("*/metrics.json"))
        assert len(finished) == len(seeds), (phase, finished)
        for path in finished:
            assert json.loads(path.read_text())["steps"] == 2
    # A second call refuses to overwrite the first one's folder, in one line.
    again = subprocess.run([sys.executable, str(SCRIPT), str(out), "--tiny", "--data-dir", str(data)],
                           capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 2 and "Traceback" not in again.stderr and str(out) in again.stderr
