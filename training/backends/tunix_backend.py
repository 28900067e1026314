"""The `tunix` backend: Gemma fine-tuning through Google's Tunix `PeftTrainer`, generation through
Tunix's `Sampler` (SPEC §4).

What Tunix does here: model classes and safetensors loading (tunix.models), the training loop with
jit, gradient accumulation (optax.MultiSteps), LoRA-only updates and Orbax checkpoint save/restore
(tunix.sft.peft_trainer), and KV-cached sampling (tunix.generate.sampler). What we plug in:

* examples from `training.data` (prompt and padding masked, completion + `<end_of_turn>` trained),
  with Gemma's BOS prepended because Tunix's sampler prepends it at generation time;
* a data hook that serves micro-batch `m` as a pure function of (data hash, seed, m), so a resumed
  run sees exactly the batches it would have seen, and that stops cleanly when a cancel is asked;
* the builtin trainer's optimizer (AdamW, warmup + schedule, clipping), so both backends agree.
  One difference remains: with grad_accum > 1, Tunix averages the micro-batches' mean losses (and
  reports the mean of their gradient norms) where the builtin trainer divides one token sum;
* a training hook that turns Tunix's step callbacks into `metrics.jsonl` lines and `hooks.on_step`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from tunix.sft import hooks as tunix_hooks
from tunix.sft import peft_trainer
from tunix.sft import utils as tunix_sft_utils

from training import base_weights
from training.backends.tunix_manifest import RunOutcome, build_manifest
from training.backends.tunix_models import (
    TOKENIZER_FILE,
    ModelDirError,
    apply_lora,
    get_preset,
    load_model,
    validate_model_dir,
)
from training.backends.tunix_tiny import write_tiny_model_dir
from training.backends.tunix_tokenizer import SentencePieceTokenizer
from training.checkpoints import KEEP_LAST, checkpoint_dir
from training.config import EVAL_SAMPLE_BATCHES, TrainConfig
from training.data import DataOrder, ExampleArrays, build_examples
from training.hooks import TrainHooks
from training.mesh import make_mesh, require_divisible_batch
from training.run_files import (
    METRICS_FILE,
    MetricsLog,
    ensure_run_config,
)
from training.run_result import finish_run, run_timings, utc_now
from training.trace_schema import canonical_json
from training.trainer import make_optimizer, make_schedule

TINY_BASE_SUBDIR = "base_model"  # where a gemma3-tiny run without model_dir keeps its random weights


def train(config, rows: list[dict], out_dir, hooks: TrainHooks | None = None, data_hash: str = "", *,
          eval_rows: list[dict] | None = None, peak_flops: float | None = None):
    """Fine-tune into `out_dir` (resuming from its latest checkpoint) and return a TrainResult.

    Raises ModelDirError before any training when the model folder is unusable."""
    config = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    if config.backend != "tunix":
        raise ValueError(f"tunix_backend.train got backend={config.backend!r}; it only runs 'tunix'.")
    hooks, out_dir = hooks or TrainHooks(), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started_at, began = utc_now(), time.perf_counter()
    model_dir = resolve_model_dir(config, out_dir)
    data_hash = data_hash or rows_hash(rows)
    run = TunixRun(config, model_dir, rows, data_hash, out_dir, hooks, eval_rows)
    outcome = run.execute()
    manifest = build_manifest(run, outcome, run_timings(started_at, began), peak_flops)
    return finish_run(out_dir, hooks, outcome.status, outcome.final_step, manifest)


def generate(out_dir_or_model_dir, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
             seed: int = 0) -> list[str]:
    """Completions from a run folder (latest checkpoint) or a bare model folder; see tunix_generate."""
    from training.backends import tunix_generate

    return tunix_generate.generate(out_dir_or_model_dir, prompts, max_new_tokens, temperature, seed)


def generate_details(out_dir_or_model_dir, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
                     seed: int = 0) -> list:
    """Like `generate`, returning tunix_generate.Generation(text, token_ids, stopped) per prompt."""
    from training.backends import tunix_generate

    return tunix_generate.generate_details(out_dir_or_model_dir, prompts, max_new_tokens, temperature, seed)


def rows_hash(rows: list[dict]) -> str:
    """Stand-in data hash for callers that have rows but no file (the engine passes the file's sha256)."""
    digest = hashlib.sha256()
    for row in rows:
        line = canonical_json({"prompt": row["prompt"], "completion": row["completion"]})
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def resolve_model_dir(config: TrainConfig, out_dir: Path) -> Path:
    """The validated weights folder; a gemma3-tiny run without one gets random weights in out_dir."""
    if config.model_dir:
        # A relative name is a folder of the models folder when there is one (TUNIXRT_MODELS_DIR), as it is
        # recorded (training.base_weights); else it is relative to the working directory.
        model_dir, root = Path(config.model_dir).expanduser(), base_weights.models_root()
        if not model_dir.is_absolute() and root is not None and (root / model_dir).is_dir():
            model_dir = root / model_dir
        model_dir = model_dir.resolve()
    elif config.model == "gemma3-tiny":
        model_dir = out_dir.resolve() / TINY_BASE_SUBDIR
        if not model_dir.exists():
            # Written aside and renamed, so a run killed mid-write never leaves half a model behind.
            partial = model_dir.with_name(TINY_BASE_SUBDIR + ".partial")
            os.replace(write_tiny_model_dir(partial, seed=config.seed), model_dir)
    else:
        raise ModelDirError([f"Preset {config.model} needs model_dir: a local folder with its *.safetensors "
                             f"and {TOKENIZER_FILE}."])
    validate_model_dir(model_dir, config.model)
    return model_dir


def build_tunix_examples(rows: list[dict], tokenizer, max_seq_len: int) -> tuple[ExampleArrays, dict]:
    """training.data examples one token shorter, then BOS shifted in front: the same sequence the
    sampler sees (BOS + prompt) and the same drop-if-too-long rule, at max_seq_len positions."""
    short, stats = build_examples(rows, tokenizer, max_seq_len - 1)
    n = len(short)
    bos = np.full((n, 1), tokenizer.bos_id, dtype=np.int32)
    examples = ExampleArrays(
        inputs=np.concatenate([bos, short.inputs], axis=1),
        targets=np.concatenate([short.inputs[:, :1], short.targets], axis=1),
        loss_mask=np.concatenate([np.zeros((n, 1), np.float32), short.loss_mask], axis=1),
        row_index=short.row_index,
        lengths=short.lengths + 1,
    )
    return examples, {**stats, "max_seq_len": max_seq_len, "bos_prepended": True}


def completion_loss(model, inputs, targets, loss_mask, positions, attention_mask):
    """Mean cross-entropy over completion tokens only (loss_mask), in float32 for bf16 models."""
    logits, _ = model(inputs, positions, None, attention_mask)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    return jnp.sum(losses * loss_mask) / jnp.maximum(jnp.sum(loss_mask), 1.0)


def model_inputs_fn(pad_id: int):
    """Batch -> loss_fn kwargs: positions and causal attention mask computed from the padding."""

    def to_model_inputs(batch: dict) -> dict:
        not_pad = batch["inputs"] != pad_id
        return {
            "inputs": batch["inputs"],
            "targets": batch["targets"],
            "loss_mask": batch["loss_mask"],
            "positions": tunix_sft_utils.build_positions_from_mask(not_pad),
            "attention_mask": tunix_sft_utils.make_causal_attn_mask(not_pad),
        }

    return to_model_inputs


def checkpoint_options(config: TrainConfig) -> ocp.CheckpointManagerOptions:
    """Every `checkpoint_every` steps (never when 0); PeftTrainer forces the final save on close."""
    every = config.checkpoint_every
    policy = (ocp.checkpoint_managers.FixedIntervalPolicy(every) if every
              else ocp.checkpoint_managers.SpecificStepsPolicy(()))
    return ocp.CheckpointManagerOptions(save_decision_policy=policy, max_to_keep=KEEP_LAST)


def eval_sample(examples: ExampleArrays, batch_size: int) -> list[dict]:
    """A fixed sample of full training batches (wrapping around small sets) for `eval_every` losses."""
    count = EVAL_SAMPLE_BATCHES * batch_size
    indices = np.arange(count) % len(examples)
    return [examples.take(indices[start:start + batch_size]) for start in range(0, count, batch_size)]


class StepData(tunix_hooks.DataHooks):
    """Serves micro-batch `trainer.iter_steps`: pure in the step, so resume needs no iterator state."""

    def __init__(self, config: TrainConfig, examples: ExampleArrays, order: DataOrder, hooks: TrainHooks,
                 eval_batches: list[dict]):
        self.config, self.examples, self.order, self.hooks = config, examples, order, hooks
        self.eval_batches, self._eval_pos = eval_batches, 0
        self.cancel_reason: str | None = None
        self.stop_status: str | None = None

    def load_next_train_batch(self, train_ctx) -> dict | None:
        step, micro = divmod(train_ctx.iter_steps, self.config.grad_accum)
        if step >= self.config.max_steps:
            return None
        # Only between optimizer steps: a half-accumulated gradient must never reach a checkpoint.
        if micro == 0 and self.hooks.should_cancel():
            self.cancel_reason, self.stop_status = self.hooks.cancel_reason(), self.hooks.stop_status()
            return None
        size = self.config.batch_size
        return self.examples.take(self.order.indices_for_step(step)[micro * size:(micro + 1) * size])

    def load_next_eval_batch(self, train_ctx) -> dict | None:
        if self._eval_pos == len(self.eval_batches):
            self._eval_pos = 0  # one pass done; the next eval starts over
            return None
        self._eval_pos += 1
        return self.eval_batches[self._eval_pos - 1]


class StepReportHooks(tunix_hooks.TrainingHooks):
    """Tunix's training hooks for a recorder that only acts on step reports (and resets its clock at the
    start): the other callbacks do nothing. Shared by SFT's and GRPO's recorders."""

    def on_train_start(self, train_ctx) -> None:
        self._last_report = time.perf_counter()

    def on_train_end(self, train_ctx) -> None:
        pass

    def on_train_step_start(self, train_ctx) -> None:
        pass

    def on_eval_step_start(self, train_ctx) -> None:
        pass

    def on_eval_step_end(self, train_ctx, eval_loss) -> None:
        pass


class StepRecorder(StepReportHooks):
    """Tunix reports step n once step n+1 has been dispatched (so host I/O overlaps device work);
    the gap between reports is therefore the steady-state step time, the first one includes compile."""

    def __init__(self, config: TrainConfig, order: DataOrder, metrics_log: MetricsLog, hooks: TrainHooks,
                 outcome: RunOutcome, eval_source: str):
        self.config, self.order, self.metrics_log, self.hooks = config, order, metrics_log, hooks
        self.outcome, self.eval_source = outcome, eval_source
        self.schedule = make_schedule(config)
        self._last_report = time.perf_counter()

    def on_train_step_end(self, train_ctx, train_step: int, train_loss: float) -> None:
        now = time.perf_counter()
        seconds, self._last_report = now - self._last_report, now
        if self.outcome.compile_seconds is None:
            self.outcome.compile_seconds = seconds
        else:
            self.outcome.step_seconds.append(seconds)
        metrics = self._metrics(train_ctx, int(train_step), float(train_loss), seconds)
        self.metrics_log.append(metrics)
        self.hooks.on_step(metrics)
        self.outcome.final_step = metrics["step"]

    def _metrics(self, train_ctx, step: int, loss: float, seconds: float) -> dict:
        logged = train_ctx.metrics_logger
        metrics = {
            "step": step,
            "loss": loss,
            "lr": float(self.schedule(step - 1)),
            "grad_norm": float(logged.get_metric_history("", "grad_norm", "train")[-1]),
            "tokens_per_s": self.config.examples_per_step * self.config.max_seq_len / max(seconds, 1e-9),
            "epoch": round(self.order.epoch_of_step(step), 4),
        }
        eval_due = self.config.eval_every and step % self.config.eval_every == 0
        if eval_due and logged.metric_exists("", "loss", "eval"):
            metrics["eval_loss"] = float(logged.get_metric_history("", "loss", "eval")[-1])
            metrics["eval_source"] = self.eval_source
        return metrics


class TunixRun:
    """One run: tokenizer, examples, model (+LoRA) and a PeftTrainer wired to our data and metrics."""

    def __init__(self, config: TrainConfig, model_dir: Path, rows: list[dict], data_hash: str, out_dir: Path,
                 hooks: TrainHooks, eval_rows: list[dict] | None = None):
        self.config, self.model_dir, self.data_hash = config, model_dir, data_hash
        self.out_dir, self.hooks = out_dir, hooks
        self.tokenizer = SentencePieceTokenizer(model_dir / TOKENIZER_FILE)
        self.model_dir_name = base_weights.portable_name(model_dir, out_dir)
        # What the run files record: the config with its weights folder named portably (no machine path).
        self.recorded_config = (dataclasses.replace(config, model_dir=self.model_dir_name) if config.model_dir
                                else config)
        self.base_weights = base_weights.fingerprint(model_dir)
        ensure_run_config(out_dir, self.run_config())
        self.examples, self.data_stats = build_tunix_examples(rows, self.tokenizer, config.max_seq_len)
        self.eval_source = "held_out" if eval_rows else "train_sample"
        self.eval_batches = []
        if config.eval_every:
            source = self.examples
            if eval_rows:
                source = build_tunix_examples(eval_rows, self.tokenizer, config.max_seq_len)[0]
            self.eval_batches = eval_sample(source, config.batch_size)
        self.mesh = make_mesh(config.mesh)
        require_divisible_batch(self.mesh, config.batch_size)
        began = time.perf_counter()
        self.model = build_model(config, model_dir, self.mesh)
        self.load_seconds = time.perf_counter() - began
        self.order = DataOrder(data_hash, config.seed, len(self.examples), config.examples_per_step)

    def run_config(self) -> dict:
        return {
            "backend": "tunix",
            "config": self.recorded_config.to_dict(),
            "config_hash": self.recorded_config.config_hash(),
            "data_hash": self.data_hash,
            "model_dir": self.model_dir_name,
            "model_family": get_preset(self.config.model).family,
            "base_weights": self.base_weights,
            # Top level so that a resume over changed weights is refused like one over changed data.
            "base_weights_sha256": self.base_weights["sha256"],
            "tokenizer": {"name": self.tokenizer.name, "sha256": self.tokenizer.sha256,
                          "vocab_size": self.tokenizer.vocab_size},
        }

    def make_trainer(self) -> peft_trainer.PeftTrainer:
        cfg = self.config
        training_config = peft_trainer.TrainingConfig(
            eval_every_n_steps=cfg.eval_every or cfg.max_steps + 1,
            max_steps=cfg.max_steps,
            gradient_accumulation_steps=cfg.grad_accum if cfg.grad_accum > 1 else None,
            checkpoint_root_directory=str(checkpoint_dir(self.out_dir)),
            checkpointing_options=checkpoint_options(cfg),
            pbar_description=None,
        )
        trainer = peft_trainer.PeftTrainer(self.model, make_optimizer(cfg), training_config)
        trainer.with_loss_fn(completion_loss)
        trainer.with_gen_model_input_fn(model_inputs_fn(self.tokenizer.pad_id))
        return trainer

    def execute(self) -> RunOutcome:
        # Under the mesh, Tunix splits each batch along `fsdp` and lays the optimizer state out like the
        # parameters; without one its sharding calls do nothing and everything runs on one device.
        with self.mesh:
            return self._execute()

    def _execute(self) -> RunOutcome:
        trainer = self.make_trainer()  # restores the latest checkpoint of out_dir, if any
        start = trainer.train_steps
        outcome = RunOutcome(start_step=start, final_step=start)
        metrics_log = MetricsLog(self.out_dir / METRICS_FILE)
        metrics_log.keep_through(start)
        if start:
            self.hooks.on_log(f"resumed from checkpoint at step {start}")
        self.hooks.on_log(
            f"tunix: training {self.config.model} ({'LoRA' if self.config.lora else 'full'}) on "
            f"{len(self.examples)} examples ({self.data_stats['dropped_too_long']} dropped as too long), "
            f"steps {start + 1}..{self.config.max_steps}, on {self.mesh.devices.size} device(s) "
            f"(mesh fsdp={self.mesh.shape['fsdp']} × tp={self.mesh.shape['tp']})"
        )
        data = StepData(self.config, self.examples, self.order, self.hooks, self.eval_batches)
        trainer.with_data_hooks(data)
        recorder = StepRecorder(self.config, self.order, metrics_log, self.hooks, outcome, self.eval_source)
        trainer.with_training_hooks(recorder)
        # Train/eval iterables are unused with data hooks; eval runs only when the list is non-empty.
        trainer.train([], self.eval_batches or None)
        if data.cancel_reason:
            outcome.status, outcome.cancel_reason = data.stop_status, data.cancel_reason
        outcome.final_step = trainer.train_steps
        self.hooks.on_log(f"checkpoint saved at step {trainer.train_steps}")
        self.hooks.on_checkpoint(trainer.train_steps)
        return outcome


def build_model(config: TrainConfig, model_dir: Path, mesh=None) -> nnx.Module:
    model = load_model(model_dir, config.model, mesh)
    if config.lora:
        model = apply_lora(model, config.lora["rank"], config.lora["alpha"], config.seed, mesh)
    return model
