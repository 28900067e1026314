"""FLOP accounting and device peaks, for MFU estimates and the speed benchmark.

MFU divides the FLOPs a step really computes by the datasheet bf16 peak of the devices it ran on
(`DATASHEET_BF16_PEAKS`, dense, no sparsity). Only for a device with no datasheet entry (a CPU, an unknown
accelerator) is the peak measured, with a matmul over the run's whole mesh, and then labelled as such in
`peak_flops_source`: a measured matmul reaches well under a datasheet peak, so dividing by it flatters MFU.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp

from training.model import ModelConfig


def param_count(params) -> int:
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))


def matmul_param_count(params) -> int:
    """Parameters used in matmuls (2 FLOPs per token forward each): everything but the embedding
    table, whose lookup is a gather, and the norm scales, which are elementwise."""
    total = 0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if leaf.ndim >= 2 and "embed" not in jax.tree_util.keystr(path):
            total += leaf.size
    return int(total)


def attention_flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token spent in QK^T and AV: 2·T·d each forward, ×3 with backward.

    The full T×T score matrix is counted (the usual MFU convention, as in PaLM's 6N + 12·L·T·d),
    although causal_attention skips the masked blocks and so computes only ~5/8 of it at T=256:
    the count is comparable across implementations, and it flatters this one by ~9 % for `small`."""
    return 3.0 * cfg.n_layers * 2 * (2.0 * seq_len * cfg.d_model)


def train_flops_per_token(cfg: ModelConfig, params, seq_len: int) -> dict:
    six_n = 6.0 * matmul_param_count(params)
    attention = attention_flops_per_token(cfg, seq_len)
    return {"six_n": six_n, "attention": attention, "total": six_n + attention}


def measure_matmul_flops(size: int = 1024, min_seconds: float = 0.5, dtype: str = "float32", mesh=None) -> float:
    """FLOP/s of a jitted [size, size] @ [size, size] on the default device, at the median run time
    (the CPU is shared, so single runs are noisy). dtype "bfloat16" multiplies bf16 inputs into a
    float32 result, the product the model uses for its bf16 compute dtype. With a mesh, every device
    multiplies its own [size, size] block at once (rows split across the mesh): the mesh's aggregate."""
    rows = size if mesh is None else size * mesh.devices.size
    a = jnp.ones((rows, size), dtype)
    b = jnp.full((size, size), 0.5, dtype)
    if mesh is not None:
        spec = jax.sharding.PartitionSpec(tuple(mesh.axis_names))
        a = jax.device_put(a, jax.sharding.NamedSharding(mesh, spec))
        b = jax.device_put(b, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
    matmul = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    matmul(a, b).block_until_ready()
    times: list[float] = []
    while sum(times) < min_seconds or len(times) < 3:
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2.0 * rows * size**2 / statistics.median(times)


# (what the device_kind contains, lower case; the device's name; dense bf16 FLOP/s per chip from the vendor's
# datasheet). First match wins, so the more specific names come first.
DATASHEET_BF16_PEAKS = (
    (("v6 lite", "v6e"), "TPU v6e", 918e12),
    (("v5 lite", "v5e", "v5litepod"), "TPU v5e", 197e12),
    (("v5p", "tpu v5"), "TPU v5p", 459e12),
    (("tpu v4",), "TPU v4", 275e12),
    (("h200 nvl",), "NVIDIA H200 NVL", 835e12),
    (("h200",), "NVIDIA H200 SXM", 989e12),
    (("h100 nvl",), "NVIDIA H100 NVL", 835e12),
    (("h100 pcie",), "NVIDIA H100 PCIe", 756e12),
    (("h100",), "NVIDIA H100 SXM", 989e12),
    (("a100",), "NVIDIA A100", 312e12),
)
PEAK_MATMUL_SIZE = 1024


def datasheet_peak(device_kind: str) -> tuple[str, float] | None:
    """(device name, dense bf16 FLOP/s) for a known accelerator, else None."""
    kind = device_kind.lower()
    for needles, name, flops in DATASHEET_BF16_PEAKS:
        if any(needle in kind for needle in needles):
            return name, flops
    return None


def run_peak(mesh, given: float | None = None, compute_dtype: str = "bfloat16") -> dict:
    """The peak an MFU estimate divides by, for the devices of `mesh`: `given` per device (the caller
    knows better), else the datasheet's, else a matmul measured over the whole mesh (labelled fallback)."""
    devices = mesh.devices.ravel().tolist()
    count = len(devices)
    if given is not None:
        return {"peak_flops": given * count, "peak_flops_per_device": given, "devices": count,
                "peak_flops_source": "given"}
    known = datasheet_peak(devices[0].device_kind)
    if known is not None:
        name, per_device = known
        return {"peak_flops": per_device * count, "peak_flops_per_device": per_device, "devices": count,
                "peak_flops_source": f"datasheet_bf16:{name}"}
    measured = measure_matmul_flops(PEAK_MATMUL_SIZE, 0.3, compute_dtype, mesh=mesh)
    return {"peak_flops": measured, "peak_flops_per_device": measured / count, "devices": count,
            "peak_flops_source": f"measured_{compute_dtype}_matmul_{PEAK_MATMUL_SIZE} (fallback: no datasheet "
                                 f"peak for {devices[0].device_kind!r})"}


def transformer_train_flops(matmul_params: int, frozen_matmul_params: int, attention: float) -> dict:
    """FLOPs per trained token. A trained weight costs 6 per token (forward, input gradient, weight
    gradient); a frozen one (LoRA's base) 4, as its weight gradient is never computed; `attention` is the
    weightless QK^T and AV work, forward and backward."""
    six_n = 6.0 * matmul_params
    frozen = 4.0 * frozen_matmul_params
    return {"six_n": six_n, "frozen_four_n": frozen, "attention": attention, "total": six_n + frozen + attention}
