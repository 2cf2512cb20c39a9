"""Device and precision: which device, the one bf16 policy, autocast, synchronisation, peak memory.

bf16 is one setting everywhere (`auto`, `fast`, `on`, `off`; the older `true`/`false` spellings still work). What
`auto` means is decided here, per device and use (the BF16_AUTO table), and nowhere else; `fast` is bf16 wherever
the hardware computes it natively (a GPU that supports it, a CPU with AMX or AVX-512 BF16), fp32 elsewhere.

Peak memory: torch's peak allocation on a GPU, the peak resident set size on a CPU. On Linux the resident
peak (VmHWM) can be reset by writing 5 to /proc/self/clear_refs, so a benchmark can measure each path or
input length on its own within one process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)
_warned: list[bool] = []  # the slow-bf16 warning, once per process

BF16_SETTINGS = {"auto": "auto", "fast": "fast", "on": "on", "off": "off", "true": "on", "false": "off"}
USES = ("train", "infer", "bench")
# `auto` per (use, device). train: bf16 on GPUs that support it (the paper's recipe); on a CPU only when a
# preset asks (cpu-sbert, chosen on dev). infer: off on a CPU, where torch bf16 changed 0.15% of all-MiniLM's
# SST-2 labels for 2.2x the speed (benchmarks/results/inference-cpu.json): the faithful answer by default.
# bench: on wherever the hardware has fast bf16 matrix units (GPU, or CPU AMX / AVX-512 BF16), to measure speed.
BF16_AUTO = {
    ("train", "cuda"): "supported", ("train", "cpu"): "off",
    ("infer", "cuda"): "supported", ("infer", "cpu"): "off",
    ("bench", "cuda"): "supported", ("bench", "cpu"): "fast",
}


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def world_size() -> int:
    """Processes training one run (torchrun's WORLD_SIZE; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun launch, or the one process without it: the one that writes and says things once."""
    return int(os.environ.get("RANK", "0")) == 0


def device_type() -> str:
    return "cuda" if cuda() else "cpu"


def default_device():
    import torch

    return torch.device(device_type())


def sync() -> None:
    """Wait for queued GPU work (timing needs it); nothing on a CPU."""
    if cuda():
        import torch

        torch.cuda.synchronize()


def check_bf16(setting: str | bool, what: str = "bf16") -> str:
    """'auto', 'fast', 'on' or 'off' for a setting (or a bool); anything else is a one-line error."""
    if isinstance(setting, bool):
        return "on" if setting else "off"
    value = BF16_SETTINGS.get(str(setting).strip().lower())
    if value is None:
        raise UserError(f"{what} must be auto, fast, on or off (true/false also accepted), got '{setting}'")
    return value


def use_bf16(setting: str | bool, use: str, what: str = "bf16") -> bool:
    """Whether to compute in bf16 for `use` (train, infer, bench) on this machine's device."""
    value = check_bf16(setting, what)
    if value == "on" and device_type() == "cpu" and not fast_cpu_bf16() and not _warned:
        _warned.append(True)  # emulated: many times slower than fp32 (the reason for `fast`)
        log.warning("%s on: this CPU has no bf16 matrix units (AMX, AVX-512 BF16), so bf16 is emulated and slow; "
                    "`fast` uses bf16 only where it is fast", what)
    if value in ("on", "off"):
        return value == "on"
    rule = "fast" if value == "fast" else BF16_AUTO[(use, device_type())]
    if device_type() == "cuda" and rule in ("supported", "fast"):
        import torch

        return torch.cuda.is_bf16_supported(including_emulation=False)  # a V100's emulated bf16 is slow
    return rule == "fast" and fast_cpu_bf16()


def fast_cpu_bf16() -> bool:
    """A CPU with native bf16 matrix instructions (AMX or AVX-512 BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def autocast(device: str, enabled: bool):
    """bf16 autocast on `device` ('cpu' or 'cuda'), or nothing."""
    import torch

    return torch.autocast(device, dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


@contextlib.contextmanager
def cpu_attention_kernel(flash: bool):
    """SDPA's kernel choice on CPU while training (the flag is process-wide, so it is restored after).

    Measured here (all-MiniLM-L6-v2, SST-2 batches, bf16): the CPU flash kernel made training steps without
    dropout ~1.4x slower than the math kernel on these short sequences (dropout already forces math).
    """
    import torch

    if flash or cuda():
        yield
        return
    before = torch.backends.cuda.flash_sdp_enabled()  # despite the name, the flag SDPA consults on CPU too
    torch.backends.cuda.enable_flash_sdp(False)
    try:
        yield
    finally:
        torch.backends.cuda.enable_flash_sdp(before)


def reset_peak() -> None:
    if cuda():
        import torch

        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux, or not allowed: the peak then covers the whole process


def peak_mb() -> float:
    if cuda():
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
