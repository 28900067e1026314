"""Entry point for training from any caller (CLI, Celery launcher subprocess, notebook).

`train(config, data_path, out_dir, hooks)` reads a tunix_sft JSONL file, takes its sha256 as the
data hash, and runs the builtin trainer or hands the rows to the Tunix backend (imported only
when asked for, so the builtin path never needs google-tunix installed). A builtin run may continue
from another builtin run's weights (`init_dir`, training.init_from) with a fresh optimizer.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from training.config import TrainConfig
from training.data import read_sft_rows
from training.flops import matmul_param_count, param_count, run_peak, train_flops_per_token
from training.hooks import TrainHooks
from training.init_from import InitRunError, copy_tokenizer, identity_hash, init_record, load_init, recorded_init_step
from training.run_files import (
    RUN_CONFIG_FILE,
    code_version,
    device_info,
    ensure_run_config,
    file_sha256,
    run_folder_lock,
)
from training.run_result import TrainResult, finish_run, run_ending, run_timings, utc_now
from training.tokenizers import TOKENIZER_FILE, Tokenizer, run_tokenizer, tokenizer_kind, tokenizer_sha256
from training.trainer import BuiltinTrainer, LoopOutcome, run_model_config, steady_tokens_per_s


def train(
    config: TrainConfig | dict,
    data_path: str | Path,
    out_dir: str | Path,
    hooks: TrainHooks | None = None,
    *,
    eval_data_path: str | Path | None = None,
    peak_flops: float | None = None,
    init_dir: str | Path | None = None,
    init_step: int | None = None,
) -> TrainResult:
    """Train into `out_dir`, resuming from its latest checkpoint if it has one.

    eval_data_path: optional held-out tunix_sft file for `eval_every` losses (else a fixed sample
    of training examples is used and labelled `train_sample`). peak_flops: device peak for the MFU
    estimate; measured with a float32 matmul when omitted. init_dir: a builtin run folder whose
    checkpoint (`init_step`, else its latest; a resumed run reads back the one it recorded) gives the first
    weights and the tokenizer; InitRunError, before `out_dir` is made, when it does not fit `config`.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(config)
    hooks = hooks or TrainHooks()
    out_dir = Path(out_dir)
    init = load_sft_init(config, Path(init_dir), recorded_init_step(out_dir, init_step)) if init_dir else None
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
        return _train_builtin(config, rows, data_hash, Path(data_path), out_dir, hooks, eval_rows, peak_flops, init)


@dataclasses.dataclass(frozen=True)
class SftInit:
    """The weights an SFT run continues from, and what its run_config.json records of them."""

    loaded: object  # training.generate.LoadedModel
    folder: Path
    record: dict


def load_sft_init(config: TrainConfig, init_dir: Path, step: int | None) -> SftInit:
    """The parent's checkpoint, refused (InitRunError) unless it is a builtin model of the configured
    preset and tokenizer kind: the weights must fit the model this run builds."""
    if config.backend != "builtin":
        raise InitRunError("Continuing training from a run's weights is built for the builtin backend only.")
    loaded = load_init(init_dir, step)
    if tokenizer_kind(loaded.tokenizer.name) != config.tokenizer:
        raise InitRunError(f"{init_dir.name} was trained with tokenizer {loaded.tokenizer.name!r}; this run is "
                           f"configured for {config.tokenizer!r}.")
    if loaded.run_config["model"] != run_model_config(config.model, loaded.tokenizer).to_dict():
        raise InitRunError(f"{init_dir.name} holds another model shape than preset {config.model!r}: "
                           f"{loaded.run_config['model']}.")
    return SftInit(loaded, init_dir, init_record(init_dir, loaded))


def builtin_run_config(config: TrainConfig, data_hash: str, data_path: Path, tokenizer: Tokenizer,
                       init: SftInit | None = None) -> dict:
    run_config = {
        "backend": "builtin",
        "config": config.to_dict(),
        "config_hash": config.config_hash(),
        "data_hash": data_hash,
        "data_path": Path(data_path).name,
        "model": run_model_config(config.model, tokenizer).to_dict(),
        "tokenizer": tokenizer.name,
        "tokenizer_sha256": tokenizer_sha256(tokenizer),
    }
    if init is not None:
        run_config |= {"init_from": init.record, "config_hash": identity_hash("sft", config.to_dict(), init.record)}
    return run_config


def _train_builtin(config, rows, data_hash, data_path, out_dir, hooks, eval_rows, peak_flops,
                   init: SftInit | None) -> TrainResult:
    started_at, began = utc_now(), time.perf_counter()
    tokenizer = _builtin_tokenizer(config, rows, out_dir, hooks, init)
    run_config = builtin_run_config(config, data_hash, data_path, tokenizer, init)
    ensure_run_config(out_dir, run_config)
    trainer = BuiltinTrainer(config, rows, data_hash, out_dir, hooks, eval_rows=eval_rows, tokenizer=tokenizer,
                             init_params=init.loaded.params if init else None)
    outcome = trainer.run()
    timings = run_timings(started_at, began)
    manifest = build_manifest(config, run_config, data_path, outcome, timings, peak_flops, tokenizer, out_dir,
                              trainer.mesh)
    return finish_run(out_dir, hooks, outcome.status, outcome.final_step, manifest)


def _builtin_tokenizer(config, rows, out_dir: Path, hooks: TrainHooks, init: SftInit | None) -> Tokenizer:
    """A continued run keeps its parent's tokenizer (the ids its weights were trained on); else the
    configured one, learned on this run's rows when it is SentencePiece."""
    if init is not None:
        copy_tokenizer(init.folder, out_dir)
        hooks.on_log(f"starting from {init.folder.name} step {init.loaded.step} with its tokenizer "
                     f"{init.loaded.tokenizer.name}")
        return init.loaded.tokenizer
    resuming = (out_dir / RUN_CONFIG_FILE).exists()
    tokenizer = run_tokenizer(config.tokenizer, config.spm_vocab_size, rows, out_dir, resuming)
    if tokenizer_sha256(tokenizer):
        how = "loaded from" if resuming else "trained on the export into"
        hooks.on_log(f"tokenizer {tokenizer.name} {how} {TOKENIZER_FILE}: {tokenizer.vocab_size} ids")
    return tokenizer


def build_manifest(config, run_config: dict, data_path, outcome: LoopOutcome, timings: dict, peak_flops,
                   tokenizer: Tokenizer, out_dir: Path, mesh) -> dict:
    model_cfg = run_model_config(config.model, tokenizer)
    return {
        "backend": "builtin",
        "config": config.to_dict(),
        "config_hash": run_config["config_hash"],
        **({"init_from": run_config["init_from"]} if "init_from" in run_config else {}),
        # The file's name only: the folder it was read from is the training machine's business.
        "data": {"path": Path(data_path).name, "sha256": run_config["data_hash"], **outcome.data_stats},
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
