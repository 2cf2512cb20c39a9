"""What the benchmark scripts share: the repository's paths and the SST-2 sentence reader.

How the scripts import it: they are run as files, `.venv/bin/python benchmarks/X.py` (from the repository root
or anywhere else), and Python puts the running script's own folder first on `sys.path`, so a plain
`from common import ...` finds this sibling file without any `sys.path` edit. The package itself
(`modernbert_glue`) comes from the environment: the editable install in `.venv`, or `PYTHONPATH=src` where it is
not installed (the GPU machine, see gpu_protocol.py). Scripts use the package's public names only.

This module imports nothing beyond the standard library, so that every script (the GPU protocol included,
which runs without `datasets`) can use it.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding `benchmarks/` and `src/`)."""

SHARED = REPO.parent / "shared"
"""The shared data and models beside the repository (`../shared`), the scripts' default inputs."""

SST2_DIR = SHARED / "data" / "sst2"
"""SST-2 as GLUE's tab-separated files: train.tsv, dev.tsv and test_labeled.tsv."""


def sentences(data_dir: Path, names=("dev.tsv", "test_labeled.tsv")) -> list[str]:
    """The sentence column of SST-2 files (tab-separated, header row, no quoting)."""
    out = []
    for name in names:
        out += [line.split("\t")[0] for line in (Path(data_dir) / name).read_text(encoding="utf-8").splitlines()[1:]]
    return out
