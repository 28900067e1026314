"""Entry point for training from any caller (CLI, Celery launcher subprocess, notebook).

`train(config, data_path, out_dir, hooks)` reads a tunix_sft JSONL file, takes its sha256 as the
data hash, and runs the builtin trainer or hands the rows to the Tunix backend (imported only
when asked for, so the builtin path never needs google-tunix installed).
"""

from __future__ import annotations

import time
from pathlib import Path

from training.config import TrainConfig
from training.data import read_sft_rows
from training.flops import matmul_param_count, param_count, run_peak, train_flops_per_token
from training.hooks import TrainHooks
from training.run_files import (
    RUN_CONFIG_FILE,
    code_version,
    device_info,
    ensure_run_config,
    file_sha256,
    run_folder_lock,
)
from training.run_result import TrainResult, finish_run, run_ending, run_timings, utc_now
from training.tokenizers import TOKENIZER_FILE, Tokenizer, run_tokenizer, tokenizer_sha256
from training.trainer import BuiltinTrainer, LoopOutcome, run_model_config, steady_tokens_per_s


def train(
    config: TrainConfig | dict,
    data_path: str | Path,
    out_dir: str | Path,
    hooks: TrainHooks | None = None,
    *,
    eval_data_path: str | Path | None = None,
    peak_flops: float | None = None,
) -> TrainResult:
    """Train into `out_dir`, resuming from its latest checkpoint if it has one.

    eval_data_path: optional held-out tunix_sft file for `eval_every` losses (else a fixed sample
    of training examples is used and labelled `train_sample`). peak_flops: device peak for the MFU
    estimate; measured with a float32 matmul when omitted.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    hooks = hooks or TrainHooks()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = read_sft_rows(data_path)
    data_hash = file_sha256(data_path)
    eval_rows = read_sft_rows(eval_data_path) if eval_data_path else None
    with run_folder_lock(out_dir):
        if config.backend == "tunix":
            from training.backends import tunix_backend

            return tunix_backend.train(
                config, rows, out_dir, hooks, data_hash, eval_rows=eval_rows, peak_flops=peak_flops
            )
        return _train_builtin(config, rows, data_hash, Path(data_path), out_dir, hooks, eval_rows, peak_flops)


def builtin_run_config(config: TrainConfig, data_hash: str, data_path: Path, tokenizer: Tokenizer) -> dict:
    return {
        "backend": "builtin",
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "data_hash": data_hash,
        "data_path": Path(data_path).name,
        "model": run_model_config(config.model, tokenizer).to_dict(),
        "tokenizer": tokenizer.name,
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
    }


def _train_builtin(config, rows, data_hash, data_path, out_dir, hooks, eval_rows, peak_flops) -> TrainResult:
    started_at, began = utc_now(), time.perf_counter()
    resuming = (out_dir / RUN_CONFIG_FILE).exists()
    tokenizer = run_tokenizer(config.tokenizer, config.spm_vocab_size, rows, out_dir, resuming)
    if tokenizer_sha256(tokenizer):
        how = "loaded from" if resuming else "trained on the export into"
        hooks.on_log(f"tokenizer {tokenizer.name} {how} {TOKENIZER_FILE}: {tokenizer.vocab_size} ids")
    ensure_run_config(out_dir, builtin_run_config(config, data_hash, data_path, tokenizer))
    trainer = BuiltinTrainer(config, rows, data_hash, out_dir, hooks, eval_rows=eval_rows, tokenizer=tokenizer)
    outcome = trainer.run()
    timings = run_timings(started_at, began)
    manifest = build_manifest(config, data_hash, data_path, outcome, timings, peak_flops, tokenizer, out_dir,
                              trainer.mesh)
    return finish_run(out_dir, hooks, outcome.status, outcome.final_step, manifest)


def build_manifest(config, data_hash, data_path, outcome: LoopOutcome, timings: dict, peak_flops,
                   tokenizer: Tokenizer, out_dir: Path, mesh) -> dict:
    model_cfg = run_model_config(config.model, tokenizer)
    return {
        "backend": "builtin",
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        # The file's name only: the folder it was read from is the training machine's business.
        "data": {"path": Path(data_path).name, "sha256": data_hash, **outcome.data_stats},
        "seed": config.seed,
        "code_version": code_version(),
        "device": {**device_info(), "mesh": outcome.mesh},
        "model": {
            "preset": config.model,
            **model_cfg.to_dict(),
            "param_count": param_count(outcome.params),
            "matmul_param_count": matmul_param_count(outcome.params),
        },
        "tokenizer": tokenizer.name,
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
        **run_ending(outcome, timings, out_dir),
        "throughput": _throughput(config, model_cfg, outcome, peak_flops, mesh),
    }


def _throughput(config, model_cfg, outcome: LoopOutcome, peak_flops: float | None, mesh) -> dict:
    """tokens/s counts every position of the fixed-shape batch (padding included): it is what the
    hardware computed, which is what an MFU estimate divides (by the peak of every device of the mesh)."""
    tokens_per_s = steady_tokens_per_s(outcome, config.examples_per_step * config.max_seq_len)
    flops = train_flops_per_token(model_cfg, outcome.params, config.max_seq_len)
    result = {"tokens_per_s": tokens_per_s, "flops_per_token": flops}
    if tokens_per_s is None:
        return result
    peak = run_peak(mesh, peak_flops, model_cfg.compute_dtype)
    result["mfu"] = {
        "estimate": flops["six_n"] * tokens_per_s / peak["peak_flops"],
        "with_attention": flops["total"] * tokens_per_s / peak["peak_flops"],
        **peak,
    }
    return result
