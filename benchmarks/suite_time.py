"""How long CI's test command takes: `.ci/run` on a fresh clone of HEAD, timed, its pytest summary recorded.

    .venv/bin/python benchmarks/suite_time.py /tmp/suite-time-ci.json

and then copied over benchmarks/results/suite-time-ci.json, the committed record. The clone goes to a temporary
folder with `../shared` linked beside it, as CI has it; `.ci/run` creates its own `.venv` there (timed apart:
`setup_seconds`) and runs `make test`. Nothing else should run on the machine meanwhile. The results file is
new: an existing one is not overwritten.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from common import REPO, SHARED

SUMMARY = re.compile(r"^\d+ (passed|failed).* in [\d.]+s.*$", re.MULTILINE)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    if args.output.exists():
        sys.exit(f"error: {args.output} exists (results are not overwritten)")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "main"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        os.symlink(SHARED, Path(tmp) / "shared")
        began = time.perf_counter()
        proc = subprocess.run(["bash", ".ci/run"], cwd=clone, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - began
        version = [str(clone / ".venv" / "bin" / "python"), "-c", "import torch; print(torch.__version__)"]
        torch = subprocess.run(version, capture_output=True, text=True, check=False).stdout.strip()
    summaries = [m.group(0) for m in SUMMARY.finditer(proc.stdout)]
    found = summaries[-1] if summaries else None
    seconds = float(re.search(r" in ([\d.]+)s", found).group(1)) if found else None
    flags = Path("/proc/cpuinfo").read_text()
    record = {
        "command": "bash .ci/run (on a fresh clone of the commit, ../shared linked beside it)",
        "script": "benchmarks/suite_time.py", "commit": commit, "returncode": proc.returncode,
        "result": found or proc.stdout[-2000:], "pytest_seconds": seconds, "ci_run_seconds": round(wall, 1),
        "setup_seconds": round(wall - seconds, 1) if seconds else None,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hardware": {"cpu": cpu_name(), "cores": os.cpu_count(), "amx": " amx_tile" in flags,
                     "avx512_bf16": " avx512_bf16" in flags},
        "python": platform.python_version(), "torch": f"{torch} (installed by .ci/run)",
        "note": "pytest_seconds: the pytest summary line's time (`make test`: pytest-xdist, 2 processes); "
                "setup_seconds: the rest of .ci/run (creating .venv, installing the packages)",
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
