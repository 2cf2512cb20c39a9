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
    with pytest.raises(UserError, match=r"^train.bf16 must be auto, on or off \(true/false also accepted\), got 'yes'$"):
        device.use_bf16("yes", "train", "train.bf16")
