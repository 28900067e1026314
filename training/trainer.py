"""The builtin SFT trainer: AdamW + schedule + clipping, gradient accumulation inside one jitted
step, masked mean cross-entropy, Orbax checkpoints and exact resume.

Exact resume holds because nothing in a step depends on process history: the batch is a pure
function of (data hash, seed, step), the model has no dropout, and params, optimizer state (with
its step count) come back bit for bit from the checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from training.checkpoints import CheckpointStore
from training.config import EVAL_SAMPLE_BATCHES, TrainConfig
from training.data import ExampleArrays, build_examples
from training.hooks import TrainHooks
from training.mesh import describe, make_mesh, place_batch, require_divisible_batch, shard_tree, tree_shardings
from training.model import ModelConfig, create_model, model_config_for
from training.packing import StepBatches
from training.run_files import METRICS_FILE, MetricsLog
from training.tokenizers import ByteTokenizer, Tokenizer

MIN_LR_RATIO = 0.1  # cosine and linear decay end at 10 % of the peak learning rate
ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.95, 1e-8


def make_schedule(config: TrainConfig):
    """lr(count) for optax, where count is the number of updates already applied.

    Linear warmup from lr/warmup to lr over `warmup_steps`, then `schedule` decay to
    MIN_LR_RATIO·lr on the last update (constant keeps lr)."""
    peak, warmup = config.learning_rate, config.warmup_steps
    decay_steps = max(1, config.max_steps - 1 - warmup)

    def schedule(count):
        count = jnp.asarray(count, jnp.float32)
        warm = jnp.minimum(1.0, (count + 1.0) / warmup) if warmup > 0 else 1.0
        progress = jnp.clip((count - warmup) / decay_steps, 0.0, 1.0)
        if config.schedule == "cosine":
            decay = MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + jnp.cos(math.pi * progress))
        elif config.schedule == "linear":
            decay = 1.0 - (1 - MIN_LR_RATIO) * progress
        else:
            decay = 1.0
        return peak * warm * decay

    return schedule


def _decay_mask(params):
    # Decay matrices (kernels, embeddings); leave RMSNorm scales alone.
    return jax.tree_util.tree_map(lambda leaf: leaf.ndim >= 2, params)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    adamw = optax.adamw(
        make_schedule(config), b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS,
        weight_decay=config.weight_decay, mask=_decay_mask,
    )
    if config.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)
    return adamw


def masked_loss_sums(graphdef, params, batch: dict) -> tuple[jax.Array, jax.Array]:
    """Sum of cross-entropy over completion tokens, and how many there were. Packed batches carry
    per-example `positions` and `segments` (training.packing); plain ones need neither."""
    model = nnx.merge(graphdef, params)
    logits = model(batch["inputs"], positions=batch.get("positions"), segments=batch.get("segments"))
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    mask = batch["loss_mask"]
    return jnp.sum(losses * mask), jnp.sum(mask)


def make_train_step(graphdef, optimizer: optax.GradientTransformation, layout: StepLayout | None = None):
    """Jitted (params, opt_state, batch[accum, B, L]) -> (params, opt_state, metrics).

    Micro-batch gradients of the loss SUM are accumulated and divided once by the total number of
    completion tokens, so grad_accum=k equals one k-times larger batch exactly (up to rounding).
    With a `layout` the step keeps params and optimizer state where the layout puts them (so the
    second step reuses the first step's program) and expects the batch split along the data axes."""
    grad_of_sums = jax.value_and_grad(lambda p, b: masked_loss_sums(graphdef, p, b), has_aux=True)

    def accumulate(params, batch):
        def body(carry, micro_batch):
            grads, loss_sum, count = carry
            (micro_loss, micro_count), micro_grads = grad_of_sums(params, micro_batch)
            grads = jax.tree_util.tree_map(jnp.add, grads, micro_grads)
            return (grads, loss_sum + micro_loss, count + micro_count), None

        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        (grads, loss_sum, count), _ = jax.lax.scan(body, (zeros, 0.0, 0.0), batch)
        return grads, loss_sum, count

    def train_step(params, opt_state, batch):
        grads, loss_sum, count = accumulate(params, batch)
        denom = jnp.maximum(count, 1.0)
        grads = jax.tree_util.tree_map(lambda g: g / denom, grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {"loss": loss_sum / denom, "grad_norm": optax.global_norm(grads), "target_tokens": count}
        return params, opt_state, metrics

    if layout is None:
        return jax.jit(train_step)
    jitted = jax.jit(train_step, out_shardings=(layout.params, layout.opt_state, layout.replicated))

    def sharded_step(params, opt_state, batch):
        with jax.set_mesh(layout.mesh):  # traced under the mesh: model.split_batch constraints apply
            return jitted(params, opt_state, batch)

    return sharded_step


@dataclass(frozen=True)
class StepLayout:
    """Where a sharded run keeps its state: params and optimizer state by training.mesh.fsdp_spec."""

    mesh: object
    params: object
    opt_state: object
    replicated: object

    @classmethod
    def of(cls, mesh, params, opt_state) -> StepLayout:
        return cls(mesh, tree_shardings(params, mesh), tree_shardings(opt_state, mesh),
                   jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))


def make_eval_step(graphdef):
    return jax.jit(lambda params, batch: masked_loss_sums(graphdef, params, batch))


def eval_batches(examples: ExampleArrays, batch_size: int, limit: int | None) -> list[dict]:
    """Fixed-shape batches over the first `limit` examples; the tail is padded with mask-0 rows."""
    count = len(examples) if limit is None else min(limit, len(examples))
    batches = []
    for start in range(0, count, batch_size):
        indices = np.arange(start, min(start + batch_size, count))
        batch = examples.take(indices)
        short = batch_size - len(indices)
        if short:
            padding = {k: np.zeros((short, *v.shape[1:]), v.dtype) for k, v in batch.items()}
            batch = {k: np.concatenate([v, padding[k]]) for k, v in batch.items()}
        batches.append(batch)
    return batches


@dataclass
class LoopOutcome:
    status: str  # training.protocol: "completed" | "cancelled" | "interrupted"
    start_step: int
    final_step: int
    cancel_reason: str | None = None
    step_seconds: list[float] = field(default_factory=list)
    compile_seconds: float | None = None
    data_stats: dict = field(default_factory=dict)
    params: object = None
    mesh: dict = field(default_factory=dict)  # training.mesh.describe of where the steps ran

    def record(self, metrics: dict, seconds: float) -> None:
        if self.compile_seconds is None:
            self.compile_seconds = seconds  # the first step of a process includes jit compilation
        else:
            self.step_seconds.append(seconds)
        self.final_step = metrics["step"]


def run_model_config(preset: str, tokenizer: Tokenizer) -> ModelConfig:
    """The preset's shape with the run's vocabulary: a learned tokenizer sets the embedding size."""
    return dataclasses.replace(model_config_for(preset), vocab_size=int(tokenizer.vocab_size), tokenizer=tokenizer.name)


class BuiltinTrainer:
    """One training run of the builtin model into `out_dir`, resuming from its latest checkpoint."""

    def __init__(self, config: TrainConfig, rows: list[dict], data_hash: str, out_dir: Path,
                 hooks: TrainHooks, eval_rows: list[dict] | None = None, tokenizer: Tokenizer | None = None,
                 init_params=None):
        self.config, self.data_hash, self.out_dir, self.hooks = config, data_hash, out_dir, hooks
        self.tokenizer = tokenizer or ByteTokenizer()
        self.model_config = run_model_config(config.model, self.tokenizer)
        self.examples, self.data_stats = build_examples(rows, self.tokenizer, config.max_seq_len)
        self.eval_source = "held_out" if eval_rows else "train_sample"
        self.eval_examples = None
        if eval_rows:
            self.eval_examples = build_examples(eval_rows, self.tokenizer, config.max_seq_len)[0]
        self.mesh = make_mesh(config.mesh)
        require_divisible_batch(self.mesh, config.batch_size)
        # Initialised on the host as on one device, then laid out: the same seed gives the same weights
        # whatever the mesh.
        self.graphdef, params = nnx.split(create_model(self.model_config, config.seed))
        if init_params is not None:  # continuing another run's weights (training.init_from), fresh optimizer
            params = init_params
        self.optimizer = make_optimizer(config)
        self.params = shard_tree(params, self.mesh)
        self.opt_state = shard_tree(self.optimizer.init(params), self.mesh)
        self.schedule = make_schedule(config)
        self.batches = StepBatches(self.examples, data_hash, config.seed, config.batch_size, config.grad_accum,
                                   int(self.tokenizer.pad_id), config.packing)
        self.data_stats.update(packing=config.packing, padding_fraction=round(self.batches.padding_fraction(), 4))
        self.metrics_log = MetricsLog(out_dir / METRICS_FILE)
        self.store = CheckpointStore(out_dir)

    def log(self, line: str) -> None:
        self.hooks.on_log(line)

    def resume(self) -> int:
        step = self.store.latest_step() or 0
        if step:
            self.params, self.opt_state, _ = self.store.restore(step, self.params, self.opt_state)
            self.log(f"resumed from checkpoint at step {step}")
        self.metrics_log.keep_through(step)
        return step

    def checkpoint(self, step: int) -> None:
        self.store.save(step, self.params, self.opt_state, {"data_hash": self.data_hash})
        self.log(f"checkpoint saved at step {step}")
        self.hooks.on_checkpoint(step)

    def run(self) -> LoopOutcome:
        start = self.resume()
        outcome = LoopOutcome("completed", start_step=start, final_step=start, data_stats=self.data_stats,
                              mesh=describe(self.mesh))
        dropped = self.data_stats["dropped_too_long"]
        self.log(
            f"training {self.config.model} on {len(self.examples)} examples ({dropped} dropped as too long), "
            f"steps {start + 1}..{self.config.max_steps}, on {self.mesh.devices.size} device(s) "
            f"(mesh fsdp={self.mesh.shape['fsdp']} × tp={self.mesh.shape['tp']})"
        )
        try:
            self._loop(outcome)
        finally:
            outcome.params = self.params
            self.store.close()
        return outcome

    def _loop(self, outcome: LoopOutcome) -> None:
        cfg = self.config
        layout = StepLayout.of(self.mesh, self.params, self.opt_state)
        train_step = make_train_step(self.graphdef, self.optimizer, layout)
        eval_step = make_eval_step(self.graphdef) if cfg.eval_every else None
        for step in range(outcome.start_step, cfg.max_steps):
            if self.hooks.should_cancel():
                outcome.status, outcome.cancel_reason = self.hooks.stop_status(), self.hooks.cancel_reason()
                break
            metrics, seconds = self._train_one_step(train_step, step)
            done = metrics["step"]
            if eval_step is not None and (done % cfg.eval_every == 0 or done == cfg.max_steps):
                metrics["eval_loss"] = self._eval_loss(eval_step)
                metrics["eval_source"] = self.eval_source
            self.metrics_log.append(metrics)
            self.hooks.on_step(metrics)
            outcome.record(metrics, seconds)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                self.checkpoint(done)
        if outcome.final_step > 0:
            self.checkpoint(outcome.final_step)

    def _train_one_step(self, train_step, step: int) -> tuple[dict, float]:
        """Run update number step+1 (0-based `step` picks the batch) and return its metrics."""
        cfg = self.config
        batch, examples = self.batches.for_step(step)
        batch = place_batch(batch, self.mesh, batch_dim=1)  # [accum, B, L]: B split across the data axes
        began = time.perf_counter()
        self.params, self.opt_state, raw = train_step(self.params, self.opt_state, batch)
        loss = float(raw["loss"])  # blocks until the step is done, so the timing is real
        seconds = time.perf_counter() - began
        metrics = {
            "step": step + 1,
            "loss": loss,
            "lr": float(self.schedule(step)),
            "grad_norm": float(raw["grad_norm"]),
            "tokens_per_s": cfg.examples_per_step * cfg.max_seq_len / seconds,
            "target_tokens": int(raw["target_tokens"]),
            "examples": examples,
            "epoch": round(self.batches.epoch_of_step(step + 1), 4),
        }
        return metrics, seconds

    def _eval_loss(self, eval_step) -> float:
        if self.eval_examples is not None:
            batches = eval_batches(self.eval_examples, self.config.batch_size, None)
        else:
            limit = EVAL_SAMPLE_BATCHES * self.config.batch_size
            batches = eval_batches(self.examples, self.config.batch_size, limit)
        total, count = 0.0, 0.0
        for batch in batches:
            with jax.set_mesh(self.mesh):
                loss_sum, tokens = eval_step(self.params, place_batch(batch, self.mesh, batch_dim=0))
            total, count = total + float(loss_sum), count + float(tokens)
        return total / max(count, 1.0)


def steady_tokens_per_s(outcome: LoopOutcome, tokens_per_step: int) -> float | None:
    """Throughput at the median step time, excluding the first (compiling) step of this process."""
    if not outcome.step_seconds:
        return None
    return tokens_per_step / statistics.median(outcome.step_seconds)
