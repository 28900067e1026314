"""Device meshes for both backends: the `mesh` setting of TrainConfig (SPEC §4).

A mesh has Tunix's two axes, `fsdp` (parameters and the batch are split along it) and `tp` (tensor
parallel: parameters split along a second dimension, the batch shared). `"auto"` is every local device on
`fsdp` with `tp` = 1; an explicit `{"fsdp": 4, "tp": 2}` names the sizes (a missing axis is 1) and may use
fewer devices than the host has (the manifest records how many it used and how many there were).

Batches are split along the data axes (`fsdp`), so a micro-batch must divide evenly across them: a batch
that does not is refused before training (Tunix would otherwise quietly replicate it on every device).

The builtin trainer shards each matrix FSDP style (`shard_tree`): one dimension divisible by the `fsdp`
size is split along it, another along `tp` when that is > 1, vectors and scalars are replicated. XLA's SPMD
partitioner inserts the gathers and reductions, so the step computes what the one-device step does (up to
the order of float additions). Orbax checkpoints carry no device assignment that a restore must match:
restoring into arrays laid out on another mesh reshards them, so a run resumes on another device count.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from training.config import AUTO_MESH, MESH_AXES, ConfigError

DATA_AXES = ("fsdp",)


def mesh_shape(value, device_count: int) -> dict[str, int]:
    """Axis sizes of the config's `mesh` on a host with `device_count` devices, or ConfigError."""
    if value == AUTO_MESH:
        return {"fsdp": device_count, "tp": 1}
    shape = {axis: int(value.get(axis, 1)) for axis in MESH_AXES}
    needed = math.prod(shape.values())
    if needed > device_count:
        raise ConfigError({"mesh": [f"{_shown(shape)} needs {needed} devices; this host has {device_count}."]})
    return shape


def make_mesh(value=AUTO_MESH, devices: list | None = None) -> Mesh:
    """The mesh `value` describes over `devices` (default: every local device), axes `fsdp` × `tp`.

    Axis types are Auto (sharding propagated by XLA), as Tunix's own meshes are: JAX 0.10's default,
    Explicit, would make every array's sharding part of its type."""
    devices = list(devices if devices is not None else jax.local_devices())
    shape = mesh_shape(value, len(devices))
    sizes = tuple(shape[axis] for axis in MESH_AXES)
    axis_types = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    if math.prod(sizes) == len(jax.devices()) and devices == list(jax.devices()):
        # All devices: let JAX order them along the physical topology (TPU slices have one).
        return jax.make_mesh(sizes, MESH_AXES, axis_types=axis_types)
    grid = np.array(devices[:math.prod(sizes)], dtype=object).reshape(sizes)
    return Mesh(grid, MESH_AXES, axis_types=axis_types)


def data_parallelism(mesh: Mesh) -> int:
    return math.prod(mesh.shape[axis] for axis in DATA_AXES)


def require_divisible_batch(mesh: Mesh, batch_size: int) -> None:
    ways = data_parallelism(mesh)
    if batch_size % ways:
        raise ConfigError({"batch_size": [
            f"{batch_size} rows do not split evenly across the mesh's {ways} data-parallel devices "
            f"({_shown(dict(mesh.shape))}); use a multiple of {ways} or a smaller mesh."]})


def batch_sharding(mesh: Mesh, ndim: int, batch_dim: int) -> NamedSharding:
    spec = [None] * ndim
    spec[batch_dim] = DATA_AXES
    return NamedSharding(mesh, PartitionSpec(*spec))


def place_batch(batch: dict, mesh: Mesh, batch_dim: int) -> dict:
    """Host arrays -> device arrays split along the data axes at `batch_dim`."""
    return {key: jax.device_put(value, batch_sharding(mesh, np.ndim(value), batch_dim))
            for key, value in batch.items()}


def fsdp_spec(shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
    """`fsdp` on the first dimension it divides (a kernel's input features, an embedding's rows), `tp` on
    the last other one it divides when it is > 1 (a kernel's output features), as Tunix lays out Gemma."""
    spec: list[str | None] = [None] * len(shape)
    if len(shape) < 2:
        return PartitionSpec(*spec)
    fsdp, tp = mesh.shape["fsdp"], mesh.shape["tp"]
    first = next((i for i, dim in enumerate(shape) if dim % fsdp == 0), None)
    if first is not None:
        spec[first] = "fsdp"
    if tp > 1:
        last = next((i for i in reversed(range(len(shape))) if spec[i] is None and shape[i] % tp == 0), None)
        if last is not None:
            spec[last] = "tp"
    return PartitionSpec(*spec)


def tree_shardings(tree: Any, mesh: Mesh) -> Any:
    return jax.tree_util.tree_map(lambda leaf: NamedSharding(mesh, fsdp_spec(np.shape(leaf), mesh)), tree)


def shard_tree(tree: Any, mesh: Mesh) -> Any:
    """`tree` laid out on `mesh` by `fsdp_spec` (a copy; the original arrays are left as they are)."""
    return jax.device_put(tree, tree_shardings(tree, mesh))


def partition_specs(tree: Any) -> dict[str, tuple]:
    """Path -> partition spec of every array leaf (replicated single-device arrays give ())."""
    specs = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        sharding = getattr(leaf, "sharding", None)
        specs[jax.tree_util.keystr(path)] = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
    return specs


def describe(mesh: Mesh) -> dict:
    """What a manifest records about where a run computed."""
    return {"shape": {axis: int(mesh.shape[axis]) for axis in MESH_AXES}, "data_axes": list(DATA_AXES),
            "devices_used": int(mesh.devices.size), "devices_available": len(jax.local_devices())}


def _shown(shape: dict) -> str:
    return " × ".join(f"{axis}={shape[axis]}" for axis in MESH_AXES)
