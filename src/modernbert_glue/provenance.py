"""What a result was produced with: command, package versions, git commit, hardware, date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("modernbert-glue", "torch", "transformers", "datasets", "accelerate", "tokenizers", "scikit-learn")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def source_checkout() -> Path | None:
    """The git checkout this package runs from (its `src/modernbert_glue` is this code), or None: an installed
    copy inside another git repository (a user's project with its .venv) is not ours to name."""
    here = Path(__file__).resolve().parent
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not top or (Path(top) / "src" / "modernbert_glue").resolve() != here:
        return None
    return Path(top).resolve()


def git_commit() -> str | None:
    """HEAD of the checkout this code runs from, '+dirty' when it has uncommitted changes; None when installed."""
    if (top := source_checkout()) is None:
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=top, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=top, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name() -> str:
    """'cuda: <GPU name>' or 'cpu: <CPU name> (N cores)'."""
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {cpu_name()} ({os.cpu_count()} cores)"


def hardware() -> dict[str, object]:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpus": gpus, "platform": platform.platform()}


def _console_scripts() -> set[str]:
    """Names of this package's installed console scripts (`modernbert-glue`)."""
    try:
        return {ep.name for ep in metadata.entry_points(group="console_scripts")
                if ep.value.split(":")[0].split(".")[0] == "modernbert_glue"} | {"modernbert-glue"}
    except Exception:  # broken metadata of some other distribution must not stop a run
        return {"modernbert-glue"}


def command_line() -> str:
    """The command that started this process, as it would be typed again from the current directory.

    `python -m modernbert_glue.cli train ...` for a module run; `modernbert-glue train ...` for the installed
    console script; otherwise the script's path relative to the current directory
    (`benchmarks/inference_cpu.py --model ...`), or as given when it is not under the current directory.
    """
    script, args = (sys.argv[0], sys.argv[1:]) if sys.argv else ("", [])
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name:  # python -m package.module (python -m package runs package.__main__)
        return shlex.join(["python", "-m", spec.name.removesuffix(".__main__"), *args])
    path = Path(script)
    if path.suffix != ".py" and path.name in _console_scripts():
        return shlex.join([path.name, *args])
    if script and script != "-c":
        try:
            script = str(Path(os.path.abspath(script)).relative_to(Path.cwd()))
        except ValueError:
            pass  # not under the current directory: as given
    return shlex.join([script, *args])


def provenance() -> dict[str, object]:
    return {
        "command": command_line(),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "hardware": hardware(),
    }
