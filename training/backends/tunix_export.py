"""A merged, Tunix-loadable checkpoint of a Tunix run: the base weights with the LoRA adapters added in.

A LoRA run's checkpoints hold adapters only, which mean something only over the exact base weights. The
merged folder stands alone:

    <folder>/state/              Orbax (StandardCheckpointer) checkpoint of the NNX state of Tunix's Gemma
    <folder>/tokenizer.model     the run's SentencePiece tokenizer
    <folder>/model.json          family, preset and how Tunix builds the ModelConfig; run, step, hashes
    <folder>/load_with_tunix.py  loads it with Tunix's own Gemma code and generates (needs no tunix-rt)

Merging follows qwix's own factorisation: for a weight `w` used as the right operand of an einsum
`lhs,rhs->out`, qwix makes `w_lora_a` over the rhs dimensions shared with lhs (then the rank) and
`w_lora_b` over the rank then the other rhs dimensions, and adds `einsum(lhs, a, b) * alpha / rank`; so
`w + einsum("<a>,<b>-><rhs>", a, b) * alpha / rank` computes the same. A Linear kernel [in, out] is the
two-dimensional case, `kernel + a @ b * alpha / rank`. A full fine-tune's weights are saved as trained.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import jax.numpy as jnp
import orbax.checkpoint as ocp
from flax import nnx

from training.backends import load_with_tunix
from training.backends.tunix_generate import load_for_generation, release
from training.backends.tunix_models import TOKENIZER_FILE, get_preset
from training.checkpoints import CheckpointStore
from training.config import AUTO_MESH
from training.mesh import make_mesh
from training.run_files import RUN_CONFIG_FILE, read_json, write_json_atomic

STATE_DIR = "state"
MODEL_INFO = "model.json"
LOAD_SCRIPT = "load_with_tunix.py"
BASE_ONLY = nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))  # LoRAParam subclasses Param


def lora_delta(module, weight: str, scale: float):
    """What `module`'s adapters add to its weight `weight` (module docstring), in the weight's layout."""
    a = getattr(module, f"{weight}_lora_a")[...].astype(jnp.float32)
    b = getattr(module, f"{weight}_lora_b")[...].astype(jnp.float32)
    w_shape = getattr(module, weight)[...].shape
    einsum_str = getattr(module, "einsum_str", None)
    if einsum_str is None:  # a Linear kernel [in, out]: x @ a @ b
        if len(w_shape) != 2:
            raise ValueError(f"Cannot merge LoRA into a {len(w_shape)}-dimensional {weight} without an einsum.")
        return (a @ b) * scale
    lhs, rhs = einsum_str.replace(" ", "").split("->")[0].split(",")
    rank = next(c for c in string.ascii_letters if c not in lhs + rhs)
    shared = "".join(c for c in rhs if c in lhs)
    others = "".join(c for c in rhs if c not in lhs)
    return jnp.einsum(f"{shared}{rank},{rank}{others}->{rhs}", a, b) * scale


def merged_state(model: nnx.Module, lora: dict | None) -> nnx.State:
    """The model's base parameters with every adapter added in: the state of a plain Tunix Gemma."""
    if lora:
        scale = float(lora["alpha"]) / int(lora["rank"])
        for _, module in nnx.iter_graph(model):
            if not isinstance(module, nnx.Module):
                continue
            for name in [n for n in vars(module) if n.endswith("_lora_a")]:
                weight = name.removesuffix("_lora_a")
                variable = getattr(module, weight)
                value = variable[...]
                variable[...] = (value.astype(jnp.float32) + lora_delta(module, weight, scale)).astype(value.dtype)
    return nnx.state(model, BASE_ONLY)


def model_info(preset_name: str, model: nnx.Module, run_config: dict, step: int) -> dict:
    preset = get_preset(preset_name)
    info = {"family": preset.family, "preset": preset.name, "source_step": step,
            "lora_merged": run_config["config"].get("lora"),
            "base_weights_sha256": (run_config.get("base_weights") or {}).get("sha256"),
            "tokenizer_sha256": (run_config.get("tokenizer") or {}).get("sha256")}
    if preset.factory:
        info["factory"] = preset.factory
        info["overrides"] = {"num_embed": int(model.config.num_embed)}
    else:
        info["kwargs"] = dict(preset.kwargs)
    return info


def export_merged(out_dir: str | Path, target: str | Path) -> Path:
    """Write the merged checkpoint of the run in `out_dir` (its latest checkpoint) to `target` (replaced)."""
    out_dir, target = Path(out_dir), Path(target)
    run_config = read_json(out_dir / RUN_CONFIG_FILE)
    step = CheckpointStore(out_dir, read_only=True).latest_step()
    mesh = make_mesh(AUTO_MESH)
    release()  # the evaluation's copy of the model: one Gemma on the chips at a time
    with mesh:
        model, tokenizer = load_for_generation(out_dir, mesh)
        state = merged_state(model, run_config["config"].get("lora"))
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save((partial / STATE_DIR).resolve(), state)
        checkpointer.wait_until_finished()
    shutil.copyfile(tokenizer.path, partial / TOKENIZER_FILE)
    shutil.copyfile(load_with_tunix.__file__, partial / LOAD_SCRIPT)
    write_json_atomic(partial / MODEL_INFO, model_info(run_config["config"]["model"], model, run_config, step))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)  # a session that dies mid-export leaves only the .partial folder behind
    return target


def describe(folder: str | Path) -> dict:
    return json.loads((Path(folder) / MODEL_INFO).read_text(encoding="utf-8"))
