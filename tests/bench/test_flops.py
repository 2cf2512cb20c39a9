"""bench/flops.py: the MFU denominator is measured in the steps' dtype and never rounds a slow device to zero."""

import torch

from modernbert_glue.bench.flops import add_mfu, matmul_tflops, significant


def test_fp32_steps_get_an_fp32_rate_on_cpu():
    rate = matmul_tflops(torch.device("cpu"), bf16=False, size=256, repeats=2)
    assert rate["dtype"] == "float32" and rate["size"] == 256 and rate["tflops"] > 0


def test_mfu_of_a_slow_device_is_not_rounded_to_zero():
    records = [{"model_tflops_per_s": 2e-6}, {"path": "unsupported"}]
    add_mfu(records, {"tflops": 4e-4})
    assert abs(records[0]["mfu"] - 0.005) < 1e-9 and "mfu" not in records[1]


def test_rates_keep_significant_digits_not_decimals():
    """A tiny model on a busy CPU runs at ~1e-5 TFLOP/s: four decimals made that 0.0, and its MFU 0."""
    assert significant(1.234567e-7) == 1.235e-7 and significant(123456.7) == 123500.0
