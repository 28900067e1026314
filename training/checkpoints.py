"""Orbax checkpoints for the builtin trainer: params, optimizer state and progress per step.

Items are saved separately so generation and evaluation restore the params alone. Orbax writes a
step into a temporary folder and renames it when complete, so a process killed mid-save never
leaves a half-written "latest" checkpoint behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

CHECKPOINT_SUBDIR = "checkpoints"
ITEM_NAMES = ("params", "opt_state", "progress")
KEEP_LAST = 2


def checkpoint_dir(out_dir: str | Path) -> Path:
    return Path(out_dir).resolve() / CHECKPOINT_SUBDIR


def _abstract(tree: Any) -> Any:
    """Restore targets: each leaf's shape, dtype and sharding. A leaf without a sharding (an abstract model
    from nnx.eval_shape) is restored onto the default device, so a checkpoint written by a run on eight
    devices loads in a one-device process (Orbax refuses to guess a layout across topologies)."""
    default = jax.sharding.SingleDeviceSharding(jax.devices()[0])

    def target(leaf):
        struct = ocp.utils.to_shape_dtype_struct(leaf)
        if isinstance(struct, jax.ShapeDtypeStruct) and struct.sharding is None:
            return jax.ShapeDtypeStruct(struct.shape, struct.dtype, sharding=default)
        return struct

    return jax.tree_util.tree_map(target, tree)


class CheckpointStore:
    """A small wrapper over one orbax CheckpointManager rooted at `<out_dir>/checkpoints`."""

    def __init__(self, out_dir: str | Path, read_only: bool = False):
        options = ocp.CheckpointManagerOptions(
            max_to_keep=KEEP_LAST, enable_async_checkpointing=False, read_only=read_only, create=not read_only
        )
        self.directory = checkpoint_dir(out_dir)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=ITEM_NAMES)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, params: Any, opt_state: Any, progress: dict) -> None:
        if step in self._manager.all_steps():
            return
        args = ocp.args.Composite(
            params=ocp.args.StandardSave(params),
            opt_state=ocp.args.StandardSave(opt_state),
            progress=ocp.args.JsonSave({**progress, "step": step}),
        )
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, step: int, params_like: Any, opt_state_like: Any) -> tuple[Any, Any, dict]:
        """Params, optimizer state and progress of `step`, shaped like the given example trees."""
        args = ocp.args.Composite(
            params=ocp.args.StandardRestore(_abstract(params_like)),
            opt_state=ocp.args.StandardRestore(_abstract(opt_state_like)),
            progress=ocp.args.JsonRestore(),
        )
        restored = self._manager.restore(step, args=args)
        return restored["params"], restored["opt_state"], dict(restored["progress"])

    def restore_params(self, params_like: Any, step: int | None = None) -> tuple[Any, int]:
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"No checkpoint found in {self.directory}.")
        args = ocp.args.Composite(params=ocp.args.StandardRestore(_abstract(params_like)))
        return self._manager.restore(step, args=args)["params"], step

    def close(self) -> None:
        self._manager.close()
