"""What `pip install modernbert-glue` gets: the wheel built from the sdist (PyPI's path) holds every file of the
package (presets, the demo page, the report template, py.typed), and the installed package runs without src/."""

import subprocess
import sys
import tarfile
import zipfile

from .conftest import REPO

PACKAGE = REPO / "src" / "modernbert_glue"
BUILD = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"


def _build(kind: str, project, dist):
    """setuptools' PEP 517 hook run in `project` (its working folder), as pip runs it; returns the file it wrote."""
    proc = subprocess.run([sys.executable, "-c", BUILD, kind, str(dist)], cwd=project, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dist / proc.stdout.split()[-1]


def test_the_wheel_from_the_sdist_holds_every_package_file_and_runs(tmp_path):
    import shutil

    project = tmp_path / "project"  # a copy: building writes egg-info and build/ folders beside the sources
    shutil.copytree(PACKAGE, project / "src" / "modernbert_glue", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(REPO / name, project)
    sdist = _build("build_sdist", project, tmp_path / "dist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
        assert not [n for n in archive.getnames() if "/tests/" in n or "/benchmarks/" in n]  # MANIFEST.in prunes them
    wheel = _build("build_wheel", next((tmp_path / "unpacked").iterdir()), tmp_path / "wheel")

    ours = {p.relative_to(PACKAGE.parent).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("modernbert_glue/")}
        archive.extractall(tmp_path / "site")  # a pure-Python wheel installs as its files
    assert ours == shipped, f"missing from the wheel: {sorted(ours - shipped)}, extra: {sorted(shipped - ours)}"
    assert {"modernbert_glue/py.typed", "modernbert_glue/presets/paper-sst2.toml"} <= shipped

    # the installed copy, not src/: its presets load from the package's own files
    code = "import modernbert_glue as mg; print(mg.__file__); print(mg.show_preset('paper-sst2')['train']['lr'])"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    where, lr = proc.stdout.split()
    assert where == str(tmp_path / "site" / "modernbert_glue" / "__init__.py") and float(lr) == 8e-5
