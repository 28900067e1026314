"""Honest MFU: datasheet bf16 peaks for the accelerators people train on, a measured matmul only as a
labelled fallback, and LoRA counted for the work it really does."""

from types import SimpleNamespace

import jax
import numpy as np
import pytest

from training.flops import datasheet_peak, run_peak, transformer_train_flops


@pytest.mark.parametrize("kind, name, tflops", [
    ("TPU v4", "TPU v4", 275), ("TPU v5 lite", "TPU v5e", 197), ("TPU v5e", "TPU v5e", 197),
    ("TPU v5p", "TPU v5p", 459), ("TPU v6 lite", "TPU v6e", 918),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100", 312), ("NVIDIA A100 80GB PCIe", "NVIDIA A100", 312),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM", 989), ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 756),
    ("NVIDIA H200", "NVIDIA H200 SXM", 989),
])
def test_known_accelerators_use_their_datasheet_bf16_peak(kind, name, tflops):
    assert datasheet_peak(kind) == (name, tflops * 1e12)


def _mesh_of(kind: str, count: int):
    return SimpleNamespace(devices=np.array([SimpleNamespace(device_kind=kind)] * count))


def test_a_tpu_v5e_8_divides_by_eight_chips_of_datasheet_peak():
    peak = run_peak(_mesh_of("TPU v5 lite", 8))
    assert peak == {"peak_flops": 8 * 197e12, "peak_flops_per_device": 197e12, "devices": 8,
                    "peak_flops_source": "datasheet_bf16:TPU v5e"}


def test_a_given_peak_is_per_device():
    assert run_peak(_mesh_of("TPU v4", 4), given=1e12)["peak_flops"] == 4e12


def test_a_cpu_falls_back_to_a_measured_matmul_and_says_so():
    from training.mesh import make_mesh

    assert datasheet_peak(jax.devices()[0].device_kind) is None
    peak = run_peak(make_mesh())
    assert peak["peak_flops"] > 0 and peak["peak_flops_source"].startswith("measured_bfloat16_matmul_1024")
    assert "fallback" in peak["peak_flops_source"]


def test_lora_counts_no_weight_gradient_for_the_frozen_weights():
    base, adapters, attention = 1_000_000, 10_000, 5_000.0
    full = transformer_train_flops(base, 0, attention)
    lora = transformer_train_flops(adapters, base, attention)
    assert full["total"] == 6 * base + attention
    assert lora["total"] == 4 * base + 6 * adapters + attention
