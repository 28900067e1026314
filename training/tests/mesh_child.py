"""A training run in a fresh interpreter, for the mesh tests (training/tests/test_mesh.py): the number of
virtual CPU devices (XLA_FLAGS) is fixed when JAX starts, so each device count needs its own process.

    python -m training.tests.mesh_child '{"backend": "builtin", "out": ..., "config": {...}, "cancel_after": 3}'

Trains through `training.engine.train` (resuming whatever the folder holds), then lays the run's latest
checkpoint out on this process's mesh the way the trainer does, and prints one JSON line: the device count,
the manifest's mesh, the losses and eval losses of metrics.jsonl, and every parameter's partition spec with
its global shape and the shape of the shard device 0 holds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax

from training.engine import train
from training.hooks import CollectingHooks
from training.mesh import partition_specs
from training.run_files import file_sha256, read_metrics
from training.tests.engine_helpers import arithmetic_traces, write_sft_file

TRACES, TRACE_SEED = 48, 3


def _layout(tree) -> dict:
    leaves = {jax.tree_util.keystr(path): leaf for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}
    return {path: {"spec": [list(a) if isinstance(a, tuple) else a for a in spec],
                   "global": list(leaves[path].shape), "shape": list(leaves[path].addressable_shards[0].data.shape)}
            for path, spec in partition_specs(tree).items()}


def builtin_layout(config, data: Path, out: Path) -> dict:
    from training.data import read_sft_rows
    from training.trainer import BuiltinTrainer

    trainer = BuiltinTrainer(config, read_sft_rows(data), file_sha256(data), out, CollectingHooks())
    trainer.resume()
    trainer.store.close()
    return _layout(trainer.params)


def tunix_layout(config, data: Path, out: Path) -> dict:
    from flax import nnx

    from training.backends.tunix_backend import TunixRun, resolve_model_dir
    from training.data import read_sft_rows

    run = TunixRun(config, resolve_model_dir(config, out), read_sft_rows(data), file_sha256(data), out,
                   CollectingHooks())
    with run.mesh:
        run.make_trainer().close()  # restores the latest checkpoint into the model, on the mesh
    return _layout(nnx.state(run.model, nnx.Param))


def main(spec: dict) -> dict:
    from training.config import TrainConfig

    out = Path(spec["out"])
    data = out.parent / "train.tunix_sft.jsonl"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        write_sft_file(data, arithmetic_traces(TRACES, seed=TRACE_SEED))
    config = TrainConfig.from_dict(spec["config"])
    result = train(config, data, out, CollectingHooks(spec.get("cancel_after")), peak_flops=1e11)
    layout = (builtin_layout if config.backend == "builtin" else tunix_layout)(config, data, out)
    lines = read_metrics(out / "metrics.jsonl")
    return {
        "devices": jax.device_count(),
        "status": result.status,
        "mesh": result.manifest["device"]["mesh"],
        "losses": [line["loss"] for line in lines],
        "eval_losses": [line["eval_loss"] for line in lines if "eval_loss" in line],
        "layout": layout,
    }


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
