"""Peak memory of the current process: torch's peak allocation on a GPU, peak resident set size on a CPU.

On Linux the resident peak (VmHWM) can be reset by writing 5 to /proc/self/clear_refs, so a benchmark can
measure each path or input length on its own within one process.
"""

from __future__ import annotations

import resource
from pathlib import Path


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def reset_peak() -> None:
    if _cuda():
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak then covers the whole process


def peak_mb() -> float:
    if _cuda():
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
