"""run_manifest.json for a Tunix run, in the builtin run's shape (training/engine.py) plus what only
Tunix runs have: model family and folder, trainable (LoRA) parameter count, library versions."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from flax import nnx

from training.backends.tunix_models import get_preset
from training.config import TrainConfig
from training.flops import matmul_param_count, param_count, run_peak, transformer_train_flops
from training.mesh import describe
from training.run_files import code_version, device_info
from training.run_result import run_ending

LIBRARIES = ("google-tunix", "qwix", "jax", "flax", "optax", "orbax-checkpoint")


@dataclass
class RunOutcome:
    """What one train() call did; the recorder fills it in as Tunix reports steps."""

    status: str = "completed"
    start_step: int = 0
    final_step: int = 0
    cancel_reason: str | None = None
    compile_seconds: float | None = None
    step_seconds: list[float] = field(default_factory=list)


def build_manifest(run, outcome: RunOutcome, timings: dict, peak_flops: float | None) -> dict:
    """`run` is the TunixRun that produced `outcome` (config, model, tokenizer, data stats)."""
    cfg = run.config
    params = nnx.state(run.model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))  # LoRAParam subclasses Param
    trainable = nnx.state(run.model, nnx.LoRAParam) if cfg.lora else params
    return {
        "backend": "tunix",
        "config": run.recorded_config.to_dict(),
        "config_hash": run.recorded_config.config_hash(),
        "data": {"sha256": run.data_hash, **run.data_stats},
        "seed": cfg.seed,
        "code_version": code_version(),
        "library_versions": _library_versions(),
        "device": {**device_info(), "mesh": describe(run.mesh)},
        "model": {
            "preset": cfg.model,
            "family": get_preset(cfg.model).family,
            "model_dir": run.model_dir_name,
            "base_weights": run.base_weights,
            "param_count": param_count(params),
            "trainable_param_count": param_count(trainable),
            "lora": cfg.lora,
        },
        "tokenizer": {"name": run.tokenizer.name, "sha256": run.tokenizer.sha256,
                      "vocab_size": run.tokenizer.vocab_size},
        **run_ending(outcome, {**timings, "model_load_seconds": run.load_seconds}, run.out_dir),
        "throughput": _throughput(cfg, run, params, outcome, peak_flops),
    }


def _library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _throughput(cfg: TrainConfig, run, params, outcome: RunOutcome, peak_flops: float | None) -> dict:
    """FLOPs per token as computed: N = the matmul weights, counting Gemma's tied embedding once as the
    output layer (the input lookup is a gather and costs nothing). Full fine-tuning trains all of N (6 per
    token); LoRA computes no weight gradient for the frozen N (4 per token) and trains its adapters (6).
    Attention (QK^T and AV over the full T×T, forward and backward) is added as the builtin trainer does."""
    if not outcome.step_seconds:
        return {"tokens_per_s": None}
    model = run.model
    tokens_per_s = cfg.examples_per_step * cfg.max_seq_len / statistics.median(outcome.step_seconds)
    base = matmul_param_count(params) + model.num_embed * model.embed_dim
    adapters = matmul_param_count(nnx.state(model, nnx.LoRAParam)) if cfg.lora else 0
    flops = transformer_train_flops(adapters if cfg.lora else base, base if cfg.lora else 0,
                                    _attention_flops(model.config, cfg.max_seq_len))
    peak = run_peak(run.mesh, peak_flops)
    return {
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops,
        "mfu": {"estimate": flops["total"] * tokens_per_s / peak["peak_flops"], **peak},
    }


def _attention_flops(model_config, seq_len: int) -> float:
    width = model_config.num_heads * model_config.head_dim
    return 3.0 * model_config.num_layers * 2 * (2.0 * seq_len * width)
