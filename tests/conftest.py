"""Shared fixtures: real SST-2 rows and a tiny ModernBERT built from the real config, trained once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modernbert_glue.inference.launch import free_port  # noqa: F401  (the package's, shared by tests)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SST2 = SHARED / "data" / "sst2"
MODERNBERT = SHARED / "models" / "modernbert-base"
TINY = ["num_hidden_layers=2", "hidden_size=64", "intermediate_size=128", "num_attention_heads=2"]
TINY_ARGS = [a for item in TINY for a in ("--model-override", item)]
CLI = [sys.executable, "-m", "modernbert_glue.cli"]
# Probabilities computed in different batches, processes or CPUs (AMX on Intel, AVX2/AVX-512 on AMD) agree to
# fp32 rounding, not bit for bit: compare them within this, and labels only where the top two are not this close
# to a tie.
PROB_ATOL = 1e-5


def pytest_collection_modifyitems(items):
    """Long real runs (marked slow) get an hour before pytest-timeout calls them hung, not the default 10 minutes."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(3600))


def pytest_configure(config):
    """Tests send SIGINT (Ctrl-C) to the processes they start, which inherit an ignored SIGINT and rightly keep
    ignoring it (training.stopping): a suite started as a background job of a non-interactive shell (`make test &`)
    has SIGINT ignored, so give it back its default for the processes started from here."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_sessionstart(session):
    """Fail at once, with one clear message, when the shared data folder is missing (never skip)."""
    missing = [p for p in (SST2, MODERNBERT) if not p.is_dir()]
    if missing:
        pytest.exit(
            f"tests need the shared data folder at {SHARED} beside the repository (missing: "
            f"{', '.join(str(p) for p in missing)}); clone or copy it there: it holds data/sst2 (GLUE SST-2 "
            f"train/dev/test.tsv) and models/modernbert-base (ModernBERT's config and tokenizer), then rerun.",
            returncode=1,
        )




def near_tie(probs) -> bool:
    """True when the two most probable labels are within PROB_ATOL of a tie (either could win on another CPU)."""
    top = np.sort(np.asarray(probs, dtype=float))[-2:]
    return bool(top[1] - top[0] <= 2 * PROB_ATOL)


def assert_probs_close(actual, expected):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    worst = float(np.abs(actual - expected).max()) if actual.size else 0.0
    assert np.allclose(actual, expected, rtol=0, atol=PROB_ATOL), f"max abs difference {worst}"


def assert_labels_match(labels, probs, names=None):
    """Each label (an index, or a name when `names` is given) is the argmax of its row of `probs`, except where
    that row is within PROB_ATOL of a tie: there it must be one of the two tied labels."""
    probs = np.asarray(probs, dtype=float)
    assert len(labels) == len(probs), (len(labels), len(probs))
    for i, (label, row) in enumerate(zip(labels, probs)):
        order = np.argsort(-row, kind="stable")
        allowed = order[:2] if near_tie(row) else order[:1]
        allowed = [names[int(j)] if names is not None else int(j) for j in allowed]
        assert label in allowed, (i, label, row.tolist())


def run_cli(*args: str, input: str | bytes | None = None, env: dict | None = None, timeout: int = 300,
            separate: bool = False):
    """The real entry point, `cli.main()` with these arguments: (exit code, stdout, stderr).

    In this process by default — importing torch and transformers again for every call cost most of the suite's
    time — with stdin, stdout, stderr, logging, the environment and torch's thread count swapped in for the call
    and restored after it. `separate`: in a subprocess instead (what needs its own process: signals, time-outs).
    """
    full_env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    if separate:
        proc = subprocess.run([*CLI, *map(str, args)], input=input, capture_output=True, text=True,
                              env={**os.environ, **full_env}, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr
    return _run_main([str(a) for a in args], input, full_env)


def _run_main(argv: list[str], input: str | None, env: dict) -> tuple[int, str, str]:
    import contextlib
    import io
    import logging

    import torch

    from modernbert_glue import cli

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved_env = {k: os.environ.get(k) for k in env}
    threads, saved_argv, saved_stdin = torch.get_num_threads(), sys.argv, sys.stdin
    out, err = io.StringIO(), io.StringIO()
    for handler in handlers:  # main() configures logging onto this call's stderr
        root.removeHandler(handler)
    os.environ.update(env)
    stdin = input if isinstance(input, bytes) else (input or "").encode()  # bytes as a shell pipes them
    sys.argv, sys.stdin = ["modernbert-glue", *argv], io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        torch.set_num_threads(threads)
        sys.argv, sys.stdin = saved_argv, saved_stdin
    return code, out.getvalue(), err.getvalue()


def benchmark_module(name: str):
    """benchmarks/NAME.py imported as a module (benchmarks/ is not a package: its scripts import their sibling
    `common` by name, so the folder goes on sys.path)."""
    import importlib.util

    folder = str(REPO / "benchmarks")
    if folder not in sys.path:
        sys.path.append(folder)
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_image_env(folder: Path) -> dict:
    """Environment for a subprocess that sees only what the GPU image offers: each package the project depends on
    that the image lacks (benchmarks/gpu_wheels.py lists the image's) is absent, and the project runs from src/,
    as on the device."""
    from importlib.metadata import packages_distributions, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    gpu_wheels = benchmark_module("gpu_wheels")
    needs = [Requirement(r) for r in requires("modernbert-glue")]
    missing = {canonicalize_name(r.name) for r in needs if r.marker is None or r.marker.evaluate({"extra": ""})}
    missing -= set(gpu_wheels.IMAGE)
    modules = {m for m, dists in packages_distributions().items() if {canonicalize_name(d) for d in dists} & missing}
    assert "datasets" in modules, modules  # the one the issue names: the lookup itself works
    # Absent as on the image, not merely failing: `import` raises and importlib.util.find_spec (what
    # transformers asks before importing `datasets`) says None.
    (folder / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({sorted(modules)!r}))\n")
    return {"PYTHONPATH": os.pathsep.join([str(folder), str(REPO / "src")])}


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
        "--set", "train.logging_steps=5", "--set", "train.warmup_ratio=0.1", "--set", "data.max_length=128", *extra,
    ]


@pytest.fixture(scope="session")
def tiny_run(small_sst2, tmp_path_factory) -> Path:
    """One real CLI training run of the tiny ModernBERT (60 steps on 320 sentences), shared by many tests."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    code, stdout, stderr = run_cli(*tiny_train_args(small_sst2, out))
    assert code == 0, stderr[-3000:]
    return out


def glue_folder(root, task: str, train: int, dev: int):
    """A GLUE-format folder with the first rows of the shared task's files (header kept where there is one)."""
    folder = root / task
    folder.mkdir()
    for name, n in (("train.tsv", train), ("dev.tsv", dev), ("test.tsv", 20)):
        lines = (SHARED / "data" / task / name).read_text(encoding="utf-8").splitlines()
        header = 0 if task == "cola" and name != "test.tsv" else 1
        write_tsv(folder / name, lines[: n + header])
    return folder


MNLI_HEADER = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
               "sentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")


def mnli_folder(folder, rows: int):
    """MNLI's GLUE layout (MNLI is not in ../shared) with real RTE pairs, labels cycling over the three classes:
    train, both dev sets, both test sets (without labels), and AX's diagnostic.tsv in ../ax beside it."""
    from modernbert_glue.data import read_examples, texts_of
    from modernbert_glue.tasks import get_task

    pairs = texts_of(read_examples(SHARED / "data/rte/dev.tsv", get_task("rte")))[:rows]
    names = get_task("mnli").label_names
    labelled = [f"{i}\t1\t1a\tfiction\t(a)\t(b)\t(A)\t(B)\t{a}\t{b}\t{names[i % 3]}\t{names[i % 3]}"
                for i, (a, b) in enumerate(pairs)]
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv", "dev_matched.tsv", "dev_mismatched.tsv"):
        write_tsv(folder / name, [MNLI_HEADER, *labelled])
    test = [f"{i}\t1\t1a\tfiction\t(a)\t(b)\t(A)\t(B)\t{a}\t{b}" for i, (a, b) in enumerate(pairs[:5])]
    for name in ("test_matched.tsv", "test_mismatched.tsv"):
        write_tsv(folder / name, ["\t".join(MNLI_HEADER.split("\t")[:10]), *test])
    (folder.parent / "ax").mkdir(exist_ok=True)
    write_tsv(folder.parent / "ax" / "diagnostic.tsv",
              ["index\tsentence1\tsentence2", *(f"{i}\t{a}\t{b}" for i, (a, b) in enumerate(pairs[:4]))])
    return folder


def train_task(tmp_path_factory, task: str, data_args: list, *extra: str):
    out = tmp_path_factory.mktemp("glue") / task
    code, _, stderr = run_cli(*tiny_train_args(data_args[1], out, "--task", task, *data_args[2:], *extra))
    assert code == 0, stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def rte_run(tmp_path_factory):
    """The tiny ModernBERT trained on 96 real RTE pairs (the packed path), shared by the pair tests."""
    data = glue_folder(tmp_path_factory.mktemp("data"), "rte", 96, 48)
    return train_task(tmp_path_factory, "rte", ["--data-dir", data], "--epochs", "1")


@pytest.fixture(scope="session")
def stsb_run(tmp_path_factory):
    """The tiny ModernBERT as a regressor on 96 real STS-B pairs."""
    data = glue_folder(tmp_path_factory.mktemp("data"), "stsb", 96, 48)
    return train_task(tmp_path_factory, "stsb", ["--data-dir", data], "--epochs", "1")
