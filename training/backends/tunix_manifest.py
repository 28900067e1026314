"""run_manifest.json for a Tunix run, in the builtin run's shape (training/engine.py) plus what only
Tunix runs have: model family and folder, trainable (LoRA) parameter count, library versions."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

from flax import nnx

from training.backends.tunix_models import get_preset
from training.config import TrainConfig
from training.flops import matmul_param_count, measure_matmul_flops, param_count
from training.mesh import describe
from training.run_files import code_version, device_info
from training.run_result import run_ending

PEAK_MATMUL_SIZE = 1024
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
        "throughput": _throughput(cfg, run.model, params, outcome, peak_flops),
    }


def _library_versions() -> dict:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def _throughput(cfg: TrainConfig, model, params, outcome: RunOutcome, peak_flops: float | None) -> dict:
    """6·N per token with N = matmul weights; Gemma's output layer is the tied embedding, so the
    embedding counts once as a matmul (the input lookup is a gather and costs nothing)."""
    if not outcome.step_seconds:
        return {"tokens_per_s": None}
    tokens_per_s = cfg.examples_per_step * cfg.max_seq_len / statistics.median(outcome.step_seconds)
    six_n = 6.0 * (matmul_param_count(params) + model.num_embed * model.embed_dim)
    source = "given"
    if peak_flops is None:
        peak_flops = measure_matmul_flops(PEAK_MATMUL_SIZE, 0.3)
        source = f"measured_f32_matmul_{PEAK_MATMUL_SIZE}"
    return {
        "tokens_per_s": tokens_per_s,
        "flops_per_token": {"six_n": six_n},
        "mfu": {"estimate": six_n * tokens_per_s / peak_flops, "peak_flops": peak_flops,
                "peak_flops_source": source},
    }
