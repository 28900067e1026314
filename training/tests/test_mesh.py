"""The `mesh` setting: the same data and seed give the same losses on 1 and on 8 (virtual CPU) devices, for
both backends; on 8 the parameters really are split across the devices; a checkpoint written on 8 devices
resumes on 1. Each device count runs in its own interpreter (training/tests/mesh_child.py), because
XLA_FLAGS=--xla_force_host_platform_device_count must be set before JAX starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from training.config import ConfigError, TrainConfig
from training.mesh import fsdp_spec, mesh_shape, require_divisible_batch

ROOT = Path(__file__).resolve().parents[2]
DEVICES = 8
# Sharded reductions add the same numbers in another order: float32 rounding, nothing more.
LOSS_RTOL = 1e-4


def _child(spec: dict, devices: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    result = subprocess.run([sys.executable, "-m", "training.tests.mesh_child", json.dumps(spec)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["devices"] == devices
    return report


BUILTIN = {"backend": "builtin", "model": "tiny", "max_steps": 6, "batch_size": 8, "grad_accum": 2,
           "learning_rate": 3e-3, "warmup_steps": 2, "max_seq_len": 96, "checkpoint_every": 3, "eval_every": 3,
           "seed": 0}
TUNIX = {"backend": "tunix", "model": "gemma3-tiny", "max_steps": 4, "batch_size": 8, "grad_accum": 2,
         "learning_rate": 3e-3, "warmup_steps": 1, "max_seq_len": 48, "checkpoint_every": 2, "eval_every": 2,
         "seed": 0, "lora": {"rank": 4, "alpha": 8.0}}


def _runs(tmp_path_factory, config: dict) -> SimpleNamespace:
    """The uninterrupted run on 1 and on 8 devices, and one stopped after its first checkpoint on 8 devices
    and finished on 1."""
    root = tmp_path_factory.mktemp(config["backend"])
    half = config["checkpoint_every"]
    first = root / "moved" / "out"
    _child({"out": str(first), "config": config, "cancel_after": half}, DEVICES)
    resumed = _child({"out": str(first), "config": config}, 1)
    return SimpleNamespace(one=_child({"out": str(root / "one" / "out"), "config": config}, 1),
                           eight=_child({"out": str(root / "eight" / "out"), "config": config}, DEVICES),
                           resumed=resumed)


@pytest.fixture(scope="module")
def builtin_runs(tmp_path_factory):
    return _runs(tmp_path_factory, BUILTIN)


@pytest.fixture(scope="module")
def tunix_runs(tmp_path_factory):
    pytest.importorskip("tunix")
    return _runs(tmp_path_factory, TUNIX)


def _assert_same_run(a: dict, b: dict, steps: int) -> None:
    assert len(a["losses"]) == len(b["losses"]) == steps
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=LOSS_RTOL)
    assert a["eval_losses"] and len(a["eval_losses"]) == len(b["eval_losses"])
    np.testing.assert_allclose(a["eval_losses"], b["eval_losses"], rtol=LOSS_RTOL)


# --- the builtin trainer ----------------------------------------------------------------------------------

def test_builtin_losses_on_8_devices_match_1_device(builtin_runs):
    _assert_same_run(builtin_runs.one, builtin_runs.eight, BUILTIN["max_steps"])
    assert builtin_runs.one["mesh"]["shape"] == {"fsdp": 1, "tp": 1}
    assert builtin_runs.eight["mesh"] == {"shape": {"fsdp": 8, "tp": 1}, "data_axes": ["fsdp"], "devices_used": 8,
                                          "devices_available": 8}


def test_builtin_parameters_are_split_across_the_8_devices(builtin_runs):
    layout = builtin_runs.eight["layout"]
    # d_model 64, d_ff 192, 3 * d_model 192: every matrix's first dimension divides by 8.
    qkv = layout["['blocks'][0]['attn']['qkv']['kernel'].value"]
    assert qkv["spec"] == ["fsdp", None] and qkv["shape"] == [64 // DEVICES, 192]
    # The byte vocabulary (260 rows) does not divide by 8, so the embedding is split along d_model.
    embed = layout["['embed']['embedding'].value"]
    assert embed["spec"] == [None, "fsdp"] and embed["shape"] == [260, 64 // DEVICES]
    matrices = {path: entry for path, entry in layout.items() if len(entry["shape"]) == 2}
    assert len(matrices) == 2 + 4 * 2  # embedding, head, and four matrices per block
    assert all(entry["spec"].count("fsdp") == 1 for entry in matrices.values())
    norms = [entry for path, entry in layout.items() if "norm" in path]
    assert norms and all(entry["spec"] == [None] for entry in norms)  # vectors stay whole on every device


def test_a_builtin_checkpoint_from_8_devices_resumes_on_1(builtin_runs):
    _assert_same_run(builtin_runs.resumed, builtin_runs.one, BUILTIN["max_steps"])


# --- the tunix backend ------------------------------------------------------------------------------------

def test_tunix_losses_on_8_devices_match_1_device(tunix_runs):
    _assert_same_run(tunix_runs.one, tunix_runs.eight, TUNIX["max_steps"])
    assert tunix_runs.eight["mesh"]["shape"] == {"fsdp": 8, "tp": 1}


def test_tunix_parameters_are_split_across_the_8_devices(tunix_runs):
    layout = tunix_runs.eight["layout"]
    embedding = layout["['embedder']['input_embedding'].value"]
    assert embedding["spec"] == ["tp", "fsdp"] and embedding["shape"] == [512, 64 // DEVICES]  # Tunix's emb_vd
    gate = layout["['layers'][0]['mlp']['gate_proj']['kernel'].value"]
    assert gate["spec"] == ["fsdp", "tp"] and gate["shape"] == [64 // DEVICES, 128]
    q_lora_b = [entry for path, entry in layout.items() if "q_einsum" in path and "lora_b" in path]
    gate_lora_a = layout["['layers'][0]['mlp']['gate_proj']['kernel_lora_a'].value"]
    assert q_lora_b and gate_lora_a["spec"] == ["fsdp", None] and gate_lora_a["shape"] == [64 // DEVICES, 4]
    split = {path: entry for path, entry in layout.items() if "fsdp" in entry["spec"]}
    for path, entry in split.items():  # device 0 holds an eighth of the array along the fsdp dimension
        dim = entry["spec"].index("fsdp")
        assert entry["shape"][dim] * DEVICES == entry["global"][dim], path
    projections = ("q_einsum", "kv_einsum", "attn_vec_einsum", "gate_proj", "up_proj", "down_proj")
    base = [path for path in split if "lora" not in path and any(name in path for name in projections)]
    assert len(base) == 2 * len(projections)  # every projection of both layers


def test_a_tunix_checkpoint_from_8_devices_resumes_on_1(tunix_runs):
    _assert_same_run(tunix_runs.resumed, tunix_runs.one, TUNIX["max_steps"])


# --- the setting itself -----------------------------------------------------------------------------------

def test_mesh_is_auto_or_axis_sizes():
    assert TrainConfig.from_dict({}).mesh == "auto"
    assert TrainConfig.from_dict({"mesh": {"fsdp": 4}}).mesh == {"fsdp": 4, "tp": 1}
    for bad, key in (("all", "mesh"), ({"data": 2}, "mesh.data"), ({"fsdp": 0}, "mesh.fsdp"),
                     ({"tp": True}, "mesh.tp"), ({}, "mesh")):
        with pytest.raises(ConfigError) as info:
            TrainConfig.from_dict({"mesh": bad})
        assert key in info.value.errors, (bad, info.value.errors)


def test_the_mesh_is_not_part_of_a_runs_identity():
    assert TrainConfig.from_dict({"mesh": {"fsdp": 8}}).config_hash() == TrainConfig.from_dict({}).config_hash()
    assert "mesh" in TrainConfig.from_dict({}).to_dict()


def test_a_mesh_bigger_than_the_host_or_a_batch_that_does_not_split_is_refused():
    with pytest.raises(ConfigError, match="needs 16 devices; this host has 8"):
        mesh_shape({"fsdp": 8, "tp": 2}, 8)
    assert mesh_shape("auto", 8) == {"fsdp": 8, "tp": 1}
    mesh = SimpleNamespace(shape={"fsdp": 8, "tp": 1})
    with pytest.raises(ConfigError) as info:
        require_divisible_batch(mesh, 12)
    assert "multiple of 8" in info.value.errors["batch_size"][0]
    require_divisible_batch(mesh, 16)


def test_fsdp_splits_the_first_dimension_it_divides_and_tp_the_last():
    four_by_two = SimpleNamespace(shape={"fsdp": 4, "tp": 2})
    assert tuple(fsdp_spec((64, 192), four_by_two)) == ("fsdp", "tp")
    assert tuple(fsdp_spec((6, 64, 10), four_by_two)) == (None, "fsdp", "tp")
    assert tuple(fsdp_spec((64,), four_by_two)) == (None,)
    assert tuple(fsdp_spec((3, 5), four_by_two)) == (None, None)  # nothing divides: replicated
