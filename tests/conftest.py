"""Shared fixtures: real SST-2 rows and a tiny ModernBERT built from the real config, trained once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SST2 = SHARED / "data" / "sst2"
MODERNBERT = SHARED / "models" / "modernbert-base"
TINY = ["num_hidden_layers=2", "hidden_size=64", "intermediate_size=128", "num_attention_heads=2"]
TINY_ARGS = [a for item in TINY for a in ("--model-override", item)]
CLI = [sys.executable, "-m", "modernbert_glue.cli"]


def run_cli(*args: str, input: str | None = None, env: dict | None = None, timeout: int = 300):
    """The real entry point in a subprocess: (returncode, stdout, stderr)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run(
        [*CLI, *map(str, args)], input=input, capture_output=True, text=True, env=full_env, timeout=timeout
    )
    return proc.returncode, proc.stdout, proc.stderr


def write_tsv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session", autouse=True)
def offline():
    """The Hub is unreachable here; say so up front instead of waiting on network time-outs."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


@pytest.fixture(scope="session")
def small_sst2(tmp_path_factory) -> Path:
    """A GLUE-format folder: the first 320 real train rows, 160 dev rows, 40 test rows."""
    if not SST2.is_dir():
        pytest.fail(f"{SST2} missing: tests need ../shared beside the repository")
    folder = tmp_path_factory.mktemp("sst2")
    for name, n in (("train.tsv", 320), ("dev.tsv", 160), ("test.tsv", 40)):
        lines = (SST2 / name).read_text(encoding="utf-8").splitlines()[: n + 1]
        write_tsv(folder / name, lines)
    return folder


def tiny_train_args(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--model", MODERNBERT, "--random-init", *TINY_ARGS, "--data-dir", data_dir,
        "--output-dir", out, "--epochs", "3", "--batch-size", "16", "--lr", "1e-3",
        "--set", "train.logging_steps=5", "--set", "train.warmup_ratio=0.1", *extra,
    ]


@pytest.fixture(scope="session")
def tiny_run(small_sst2, tmp_path_factory) -> Path:
    """One real CLI training run of the tiny ModernBERT (60 steps on 320 sentences), shared by many tests."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    code, stdout, stderr = run_cli(*tiny_train_args(small_sst2, out))
    assert code == 0, stderr[-3000:]
    return out
