"""device.py: one bf16 setting, its `auto` decided per use and device."""

import pytest

from modernbert_glue import device
from modernbert_glue.errors import UserError


@pytest.mark.parametrize("setting, expected", [("on", True), ("off", False), ("true", True), ("False", False),
                                               (True, True), (False, False)])
def test_explicit_settings_and_the_old_spellings(setting, expected):
    for use in device.USES:
        assert device.use_bf16(setting, use) is expected


def test_auto_is_decided_per_use_and_device(monkeypatch):
    monkeypatch.setattr(device, "device_type", lambda: "cpu")
    monkeypatch.setattr(device, "fast_cpu_bf16", lambda: True)
    assert (device.use_bf16("auto", "train"), device.use_bf16("auto", "infer"), device.use_bf16("auto", "bench")) == (
        False, False, True)
    monkeypatch.setattr(device, "fast_cpu_bf16", lambda: False)
    assert device.use_bf16("auto", "bench") is False


def test_a_bad_setting_is_one_line():
    with pytest.raises(UserError, match=r"^train.bf16 must be auto, fast, on or off \(true/false also accepted\), got 'yes'$"):
        device.use_bf16("yes", "train", "train.bf16")


@pytest.mark.parametrize("device_type, fast_cpu, expected", [("cpu", True, True), ("cpu", False, False)])
def test_fast_is_bf16_only_where_the_hardware_computes_it(monkeypatch, caplog, device_type, fast_cpu, expected):
    """`fast` (the cpu-sbert preset's): bf16 on a CPU with AMX / AVX-512 BF16, fp32 on one that would emulate it;
    `on` there still means on, with one warning that it is slow."""
    monkeypatch.setattr(device, "device_type", lambda: device_type)
    monkeypatch.setattr(device, "fast_cpu_bf16", lambda: fast_cpu)
    monkeypatch.setattr(device, "_warned", [])
    for use in device.USES:
        assert device.use_bf16("fast", use) is expected
    with caplog.at_level("WARNING", logger="modernbert_glue.device"):
        assert device.use_bf16("on", "train", "train.bf16") and device.use_bf16("on", "infer", "--bf16")
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ([] if fast_cpu else [
        "train.bf16 on: this CPU has no bf16 matrix units (AMX, AVX-512 BF16), so bf16 is emulated and slow; `fast` "
        "uses bf16 only where it is fast"])
