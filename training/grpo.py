"""GRPO (group relative policy optimisation) for the builtin model, starting from a trained run folder.

Each step takes `prompts_per_step` prompts (order: a pure function of the prompts' hash, seed and epoch,
as in SFT), samples `group_size` completions per prompt with the KV-cache generator (seed: a pure function
of (seed, step)), scores them with the product's judges (training.rewards), and normalises each reward
within its group: A = (r - mean) / (std + 1e-6), and A = 0 for a group whose rewards are all equal.

The loss is over completion tokens only (the stop token included; prompt, left padding and the slots
after the stop are masked), averaged per sequence and then over sequences:

    -min(ratio·A, clip(ratio, 1 - epsilon, 1 + epsilon)·A) + beta·KL,   ratio = exp(logp - logp_old)

with the k3 estimator KL = exp(ref - logp) - (ref - logp) - 1 against the frozen starting weights. Token
log-probs come from one teacher-forced forward over [prompt + completion], laid out exactly as generation
lays out its buffer (training.generate), at the sampling temperature (top_p is not applied to them).
With `inner_updates` = 1 the ratio is exactly 1 (logp_old is logp without gradient); with more, every
inner update reuses the same samples and logp_old is taken once before the first.

Resume is exact for the reason SFT's is: a step's prompts and sampling seed depend only on (prompts,
seed, step), the model has no dropout, and params plus optimizer state come back bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from training.checkpoints import CheckpointStore
from training.config import ConfigError
from training.data import DataError, DataOrder
from training.flops import param_count
from training.generate import (
    Generation,
    LoadedModel,
    _mask,
    _positions,
    generate_batch,
    left_pad,
    load_model,
    prompt_length,
)
from training.hooks import TrainHooks
from training.render import render_prompt
from training.rewards import RewardSpec, group_advantages, reward_metrics
from training.run_files import (
    METRICS_FILE,
    RUN_CONFIG_FILE,
    MetricsLog,
    code_version,
    device_info,
    ensure_run_config,
    read_json,
    read_metrics,
    run_folder_lock,
)
from training.run_result import TrainResult, finish_run, run_ending, run_timings, utc_now
from training.tokenizers import TOKENIZER_FILE
from training.trace_schema import canonical_json
from training.trainer import ADAM_B1, ADAM_B2, ADAM_EPS, LoopOutcome

ALGORITHM = "grpo"
SAMPLES_FILE = "samples.jsonl"
DEFAULT_REWARD = {"judges": {"answer_exact": 1.0}}


class InitRunError(ValueError):
    """The folder GRPO starts from is not a builtin run (or lacks the checkpoint asked for)."""


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
    max_steps: int = 100
    prompts_per_step: int = 8
    group_size: int = 4  # G completions per prompt
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    learning_rate: float = 1e-4
    warmup_steps: int = 0  # linear warmup over this many GRPO steps, then constant
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    beta: float = 0.04  # KL weight
    epsilon: float = 0.2  # ratio clip
    inner_updates: int = 1  # optimizer updates per sampled batch (Tunix's num_iterations)
    seed: int = 0
    checkpoint_every: int = 50
    sample_every: int = 10  # every N steps, record `sample_count` completions with their judges (0: never)
    sample_count: int = 4
    reward: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_REWARD))

    def __post_init__(self):
        # The recorded reward always names its judges' versions, however the config was built.
        object.__setattr__(self, "reward", RewardSpec.from_dict(self.reward).to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> GRPOConfig:
        """Validate everything at once; raise ConfigError naming each bad key (`reward.judges.<name>`…)."""
        if not isinstance(data, dict):
            raise ConfigError({"non_field_errors": ["A GRPO config must be a mapping of keys to values"]})
        errors = _config_errors(data)
        if errors:
            raise ConfigError(errors)
        return cls(**{key: float(value) if key in _FLOAT_RULES else value for key, value in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> GRPOConfig:
        """A YAML or JSON (by its `.json` suffix) config file; an unreadable or unparsable one is a
        ConfigError on `config`. JSON is not read as YAML: PyYAML takes JSON's `1e-3` for a string."""
        import yaml

        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError({"config": [f"Cannot read config file {str(path)!r}: {exc.strerror}."]}) from exc
        try:
            data = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError({"config": [f"{str(path)!r} is not valid {Path(path).suffix[1:] or 'YAML'}: "
                                          f"{exc}"]}) from exc
        return cls.from_dict(data if data is not None else {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def reward_spec(self) -> RewardSpec:
        return RewardSpec.from_dict(self.reward)


_DEFAULTS = {**dataclasses.asdict(GRPOConfig()), "reward": DEFAULT_REWARD}
_INT_MINIMUMS = {"max_steps": 1, "prompts_per_step": 1, "group_size": 2, "max_new_tokens": 1, "warmup_steps": 0,
                 "inner_updates": 1, "seed": 0, "checkpoint_every": 0, "sample_every": 0, "sample_count": 0}
_FLOAT_RULES = {
    "learning_rate": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "temperature": (lambda v: 0 < v <= 10, "in (0, 10]"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "epsilon": (lambda v: 0 < v < 1, "in (0, 1)"),
    **{key: (lambda v: v >= 0, ">= 0") for key in ("weight_decay", "clip_norm", "beta")},
}


def _config_errors(data: dict) -> dict[str, list[str]]:
    errors = {str(key): [f"Unknown key; allowed keys are {', '.join(_DEFAULTS)}."]
              for key in sorted(set(data) - set(_DEFAULTS), key=str)}
    cfg = {**_DEFAULTS, **{k: v for k, v in data.items() if k in _DEFAULTS}}
    for key, low in _INT_MINIMUMS.items():
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < low:
            errors[key] = [f"Must be an integer >= {low} (got {cfg[key]!r})."]
    for key, (allowed, bounds) in _FLOAT_RULES.items():
        value = cfg[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
        if not number or not allowed(value):
            errors[key] = [f"Must be a number {bounds} (got {value!r})."]
    try:
        RewardSpec.from_dict(cfg["reward"])
    except ConfigError as exc:
        errors.update(exc.errors)
    return errors


# --- data and randomness ---------------------------------------------------------------------

def check_prompts(prompts: list[dict]) -> list[dict]:
    """Items `{"prompt": raw user text, "expected_answer": str, ...}` (eval items have this shape)."""
    if not prompts:
        raise DataError("GRPO needs at least one prompt with an expected answer.")
    for index, item in enumerate(prompts):
        for key in ("prompt", "expected_answer"):
            if not isinstance(item, dict) or not isinstance(item.get(key), str) or not item[key]:
                raise DataError(f"prompt {index}: key {key!r} must be a non-empty string.")
    return prompts


def read_prompts(path: str | Path) -> list[dict]:
    """The items of a JSONL file, one per line (eval items will do: keys besides the two are ignored)."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} line {line_no}: not valid JSON ({exc.msg}).") from exc
    try:
        return check_prompts(items)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc


def prompts_hash(prompts: list[dict]) -> str:
    content = [[item["prompt"], item["expected_answer"]] for item in prompts]
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def step_seed(seed: int, step: int) -> int:
    """The sampling seed of 0-based `step`: a pure function of (seed, step)."""
    digest = hashlib.sha256(f"grpo:{seed}:{step}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


# --- advantages and the loss -----------------------------------------------------------------

def completion_batch(prompt_tokens: np.ndarray, pads: np.ndarray, completions: list[list[int]], max_new: int,
                     pad_id: int) -> dict[str, np.ndarray]:
    """The [B, P + max_new] buffer generation wrote (left-padded prompt, completion, then pad) and the
    [B, max_new] mask of completion tokens, the stop token included."""
    batch, prompt_len = prompt_tokens.shape
    buffer = np.full((batch, prompt_len + max_new), pad_id, dtype=np.int32)
    buffer[:, :prompt_len] = prompt_tokens
    mask = np.zeros((batch, max_new), dtype=np.float32)
    for row, ids in enumerate(completions):
        buffer[row, prompt_len:prompt_len + len(ids)] = ids
        mask[row, :len(ids)] = 1.0
    return {"buffer": buffer, "pads": pads.astype(np.int32), "completion_mask": mask}


def token_log_probs(graphdef, params, buffer, pads, prompt_len: int, temperature: float):
    """Log-prob and entropy [B, max_new] of each completion slot's token under softmax(logits / T)."""
    slots = jnp.arange(buffer.shape[1])
    model = nnx.merge(graphdef, params)
    logits = model(buffer, _positions(slots, pads), _mask(slots, pads, buffer.shape[1]))
    log_probs = jax.nn.log_softmax(logits[:, prompt_len - 1:-1] / temperature, axis=-1)
    chosen = jnp.take_along_axis(log_probs, buffer[:, prompt_len:, None], axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
    return chosen, entropy


def sequence_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over each sequence's masked tokens, then over sequences (Tunix's sequence-mean-token-mean)."""
    per_sequence = jnp.sum(values * mask, axis=1) / jnp.maximum(jnp.sum(mask, axis=1), 1.0)
    return jnp.mean(per_sequence)


def grpo_loss(graphdef, params, batch: dict, *, prompt_len: int, temperature: float, beta: float,
              epsilon: float) -> tuple[jax.Array, dict]:
    """The clipped, KL-penalised objective of the module docstring, and its diagnostics.

    batch: buffer, pads, completion_mask, advantages [B], ref_logp [B, max_new], old_logp (None: this
    forward's own log-probs without gradient, so the ratio is 1)."""
    logp, entropy = token_log_probs(graphdef, params, batch["buffer"], batch["pads"], prompt_len, temperature)
    mask = batch["completion_mask"]
    old = jax.lax.stop_gradient(logp) if batch.get("old_logp") is None else batch["old_logp"]
    ratio = jnp.exp(logp - old)
    advantages = batch["advantages"][:, None]
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages
    delta = batch["ref_logp"] - logp
    kl = jnp.exp(delta) - delta - 1.0
    loss = sequence_mean(-jnp.minimum(unclipped, clipped) + beta * kl, mask)
    aux = {
        "kl": sequence_mean(kl, mask),
        "clip_fraction": sequence_mean((clipped < unclipped).astype(jnp.float32), mask),
        "entropy": sequence_mean(jax.lax.stop_gradient(entropy), mask),
    }
    return loss, aux


def make_schedule(config: GRPOConfig):
    """lr(count) for optax (count: updates already applied): linear warmup over `warmup_steps` GRPO
    steps, then constant."""
    def schedule(count):
        grpo_step = jnp.asarray(count, jnp.float32) // config.inner_updates
        warm = jnp.minimum(1.0, (grpo_step + 1.0) / config.warmup_steps) if config.warmup_steps else 1.0
        return config.learning_rate * warm

    return schedule


def make_optimizer(config: GRPOConfig) -> optax.GradientTransformation:
    """AdamW as in SFT (norm scales not decayed) on `make_schedule`, with global-norm clipping."""
    adamw = optax.adamw(make_schedule(config), b1=ADAM_B1, b2=ADAM_B2, eps=ADAM_EPS, weight_decay=config.weight_decay,
                        mask=lambda params: jax.tree_util.tree_map(lambda leaf: leaf.ndim >= 2, params))
    if config.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), adamw)
    return adamw


def make_update_step(graphdef, optimizer, config: GRPOConfig, prompt_len: int):
    """Jitted (params, opt_state, batch) -> (params, opt_state, metrics) for one optimizer update."""
    settings = {"prompt_len": prompt_len, "temperature": config.temperature, "beta": config.beta,
                "epsilon": config.epsilon}
    grad_fn = jax.value_and_grad(lambda p, b: grpo_loss(graphdef, p, b, **settings), has_aux=True)

    @jax.jit
    def update(params, opt_state, batch):
        (loss, aux), grads = grad_fn(params, batch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        metrics = {"loss": loss, "grad_norm": optax.global_norm(grads), **aux}
        return optax.apply_updates(params, updates), opt_state, metrics

    return update


# What the compiled programs depend on besides the model and the prompt length. They are cached on it, so a
# second run in one process (a resume, a test) does not compile them again.
PROGRAM_KEYS = ("learning_rate", "warmup_steps", "inner_updates", "weight_decay", "clip_norm", "temperature",
                "beta", "epsilon")


@functools.lru_cache(maxsize=4)
def programs(graphdef, prompt_len: int, settings: tuple):
    """(optimizer, jitted update, jitted log-probs); settings: (key, value) pairs of PROGRAM_KEYS."""
    config = GRPOConfig(**dict(settings))
    optimizer = make_optimizer(config)
    log_probs = jax.jit(lambda params, buffer, pads: token_log_probs(graphdef, params, buffer, pads, prompt_len,
                                                                     config.temperature)[0])
    return optimizer, make_update_step(graphdef, optimizer, config, prompt_len), log_probs


# --- the run ---------------------------------------------------------------------------------

def grpo_train(config: GRPOConfig | dict, prompts: list[dict], init_dir: str | Path, out_dir: str | Path,
               hooks: TrainHooks | None = None, *, init_step: int | None = None) -> TrainResult:
    """GRPO from the weights of builtin run `init_dir` (its latest checkpoint, or `init_step`) into
    `out_dir`, resuming from `out_dir`'s latest checkpoint if it has one (with the init step it recorded).

    prompts: `{"prompt", "expected_answer"}` items; the prompt is raw user text (rendered here).
    Raises InitRunError, before creating `out_dir`, when `init_dir` is not a builtin run with that checkpoint."""
    if not isinstance(config, GRPOConfig):
        config = GRPOConfig.from_dict(config)
    hooks = hooks or TrainHooks()
    prompts = check_prompts(prompts)
    init_dir, out_dir = Path(init_dir), Path(out_dir)
    started_at, began = utc_now(), time.perf_counter()
    if init_step is None and (out_dir / RUN_CONFIG_FILE).exists():
        init_step = read_json(out_dir / RUN_CONFIG_FILE).get("init_from", {}).get("step")
    loaded = load_init(init_dir, init_step)
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(out_dir):
        run_config = grpo_run_config(config, prompts_hash(prompts), init_dir, loaded)
        ensure_run_config(out_dir, run_config)
        _copy_tokenizer(init_dir, out_dir)
        trainer = GRPOTrainer(config, prompts, loaded, run_config, out_dir, hooks)
        outcome = trainer.run()
        manifest = grpo_manifest(run_config, outcome, run_timings(started_at, began), out_dir)
        return finish_run(out_dir, hooks, outcome.status, outcome.final_step, manifest)


def load_init(init_dir: Path, step: int | None) -> LoadedModel:
    try:
        return load_model(init_dir, step)
    except (FileNotFoundError, ValueError) as exc:
        at = f" at step {step}" if step is not None else ""
        raise InitRunError(f"Cannot start GRPO from {str(init_dir)!r}{at}: {exc}") from exc


def grpo_run_config(config: GRPOConfig, data_hash: str, init_dir: Path, loaded: LoadedModel) -> dict:
    """run_config.json: what training.generate.load_model needs (backend, model, tokenizer), plus the
    algorithm, the reward spec with its judge versions and where the weights came from."""
    source = loaded.run_config
    init_from = {"folder": Path(init_dir).name, "step": loaded.step, "config_hash": source.get("config_hash"),
                 "data_hash": source.get("data_hash"), "algorithm": source.get("algorithm", "sft")}
    identity = {"algorithm": ALGORITHM, "config": config.to_dict(), "init_from": init_from}
    return {
        "backend": "builtin",
        "algorithm": ALGORITHM,
        "config": config.to_dict(),
        "config_hash": hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest(),
        "data_hash": data_hash,
        "init_from": init_from,
        "reward": config.reward_spec.to_dict(),
        "model": source["model"],
        "tokenizer": source["tokenizer"],
        "tokenizer_sha256": source.get("tokenizer_sha256"),
    }


def _copy_tokenizer(init_dir: Path, out_dir: Path) -> None:
    source, target = init_dir / TOKENIZER_FILE, out_dir / TOKENIZER_FILE
    if source.exists() and not target.exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


def grpo_manifest(run_config: dict, outcome: LoopOutcome, timings: dict, out_dir: Path) -> dict:
    recent = [line["reward_mean"] for line in read_metrics(out_dir / METRICS_FILE)[-10:]]
    return {
        **{key: run_config[key] for key in ("backend", "algorithm", "config", "config_hash", "init_from", "reward",
                                            "tokenizer", "tokenizer_sha256")},
        "data": {"sha256": run_config["data_hash"], **outcome.data_stats},
        "seed": run_config["config"]["seed"],
        "code_version": code_version(),
        "device": device_info(),
        "model": {**run_config["model"], "param_count": param_count(outcome.params)},
        **run_ending(outcome, timings, out_dir),
        "final_rewards": {"reward_mean_last_10": statistics.fmean(recent) if recent else None},
    }


@dataclasses.dataclass
class Rollout:
    """One step's completions, scored; lists run over completions, prompt by prompt (groups are adjacent)."""

    items: list[dict]  # the prompt item of each completion
    rendered: list[str]
    generations: list[Generation]
    judged: list[dict[str, float]]
    rewards: np.ndarray  # [P, G] weighted totals
    advantages: np.ndarray  # [P, G]
    flat: np.ndarray  # [P] True where a group's rewards are all equal


class GRPOTrainer:
    """One GRPO run into `out_dir`; the policy starts from, and is penalised towards, `loaded`'s params."""

    def __init__(self, config: GRPOConfig, prompts: list[dict], loaded: LoadedModel, run_config: dict,
                 out_dir: Path, hooks: TrainHooks):
        self.config, self.prompts, self.loaded, self.hooks = config, prompts, loaded, hooks
        self.spec = config.reward_spec
        self.reference = self.params = loaded.params  # jax arrays are immutable: updates never touch these
        # One padded prompt length for every step, so each program compiles once.
        self.prompt_len = prompt_length(loaded, [render_prompt(item["prompt"]) for item in prompts])
        settings = tuple((key, getattr(config, key)) for key in PROGRAM_KEYS)
        self.optimizer, self.update, self.log_probs = programs(loaded.graphdef, self.prompt_len, settings)
        self.schedule = make_schedule(config)
        # Committed like the update's outputs, so the second update reuses the first one's program.
        self.opt_state = jax.device_put(self.optimizer.init(self.params), jax.devices()[0])
        self.order = DataOrder(run_config["data_hash"], config.seed, len(prompts), config.prompts_per_step)
        self.metrics_log = MetricsLog(out_dir / METRICS_FILE)
        self.samples_log = MetricsLog(out_dir / SAMPLES_FILE)
        self.store = CheckpointStore(out_dir)

    def run(self) -> LoopOutcome:
        start = self.store.latest_step() or 0
        if start:
            self.params, self.opt_state, _ = self.store.restore(start, self.params, self.opt_state)
            self.hooks.on_log(f"resumed from checkpoint at step {start}")
        self.metrics_log.keep_through(start)
        self.samples_log.keep_through(start)
        outcome = LoopOutcome("completed", start_step=start, final_step=start,
                              data_stats={"prompts": len(self.prompts)})
        self.hooks.on_log(f"GRPO on {len(self.prompts)} prompts, {self.config.group_size} completions each, "
                          f"steps {start + 1}..{self.config.max_steps}")
        try:
            self._loop(outcome)
        finally:
            outcome.params = self.params
            self.store.close()
        return outcome

    def _loop(self, outcome: LoopOutcome) -> None:
        cfg = self.config
        for step in range(outcome.start_step, cfg.max_steps):
            if self.hooks.should_cancel():
                outcome.status, outcome.cancel_reason = self.hooks.stop_status(), self.hooks.cancel_reason()
                break
            began = time.perf_counter()
            metrics, samples = self.train_step(step)
            self.metrics_log.append(metrics)
            self.hooks.on_step(metrics)
            if samples:
                self._record_samples(metrics["step"], samples)
            outcome.record(metrics, time.perf_counter() - began)
            if cfg.checkpoint_every and metrics["step"] % cfg.checkpoint_every == 0:
                self.checkpoint(metrics["step"])
        if outcome.final_step > 0:
            self.checkpoint(outcome.final_step)

    def checkpoint(self, step: int) -> None:
        if step == self.store.latest_step():
            return  # the last step was also a checkpoint_every step (or nothing ran after a resume)
        self.store.save(step, self.params, self.opt_state, {"algorithm": ALGORITHM})
        self.hooks.on_log(f"checkpoint saved at step {step}")
        self.hooks.on_checkpoint(step)

    def _record_samples(self, step: int, samples: list[dict]) -> None:
        self.samples_log.append({"step": step, "samples": samples})
        self.hooks.on_samples(step, samples)

    def train_step(self, step: int) -> tuple[dict, list[dict]]:
        """Sample, score and update for 0-based `step`: its metrics and, every sample_every steps, samples."""
        cfg = self.config
        began = time.perf_counter()
        rollout = self.rollout(step)
        sample_seconds, began = time.perf_counter() - began, time.perf_counter()
        raw = self._update(rollout)
        metrics = {
            "step": step + 1,
            "lr": float(self.schedule(step * cfg.inner_updates)),
            **raw,
            **reward_metrics(rollout.rewards, rollout.judged),
            "zero_signal_fraction": float(rollout.flat.mean()),
            **length_metrics(rollout.generations),
            "sample_seconds": sample_seconds,
            "update_seconds": time.perf_counter() - began,
            "epoch": round(self.order.epoch_of_step(step + 1), 4),
        }
        due = cfg.sample_every and (step + 1) % cfg.sample_every == 0
        return metrics, (sample_rows(rollout, cfg.sample_count) if due else [])

    def rollout(self, step: int) -> Rollout:
        cfg = self.config
        items = [self.prompts[i] for i in self.order.indices_for_step(step) for _ in range(cfg.group_size)]
        rendered = [render_prompt(item["prompt"]) for item in items]
        policy = dataclasses.replace(self.loaded, params=self.params)
        generations = generate_batch(policy, rendered, cfg.max_new_tokens, cfg.temperature, step_seed(cfg.seed, step),
                                     len(rendered), prompt_len=self.prompt_len, top_p=cfg.top_p)
        scored = [self.spec.reward(g.text, item["expected_answer"]) for g, item in zip(generations, items, strict=True)]
        rewards = np.asarray([total for total, _ in scored]).reshape(cfg.prompts_per_step, cfg.group_size)
        advantages, flat = group_advantages(rewards)
        return Rollout(items, rendered, generations, [judged for _, judged in scored], rewards, advantages, flat)

    def _update(self, rollout: Rollout) -> dict:
        """The optimizer update(s) on one rollout; loss, kl, clip_fraction and entropy averaged over them."""
        cfg, pad_id = self.config, int(self.loaded.tokenizer.pad_id)
        prompt_tokens, pads = left_pad([self.loaded.tokenizer.encode(p) for p in rollout.rendered], self.prompt_len,
                                       pad_id)
        arrays = completion_batch(prompt_tokens, pads, [g.token_ids for g in rollout.generations], cfg.max_new_tokens,
                                  pad_id)
        batch = {key: jnp.asarray(value) for key, value in arrays.items()}
        batch["advantages"] = jnp.asarray(rollout.advantages.reshape(-1))
        batch["ref_logp"] = self.log_probs(self.reference, batch["buffer"], batch["pads"])
        batch["old_logp"] = None  # the ratio is 1: grpo_loss uses its own log-probs without gradient
        if cfg.inner_updates > 1:
            batch["old_logp"] = self.log_probs(self.params, batch["buffer"], batch["pads"])
        history = []
        for _ in range(cfg.inner_updates):
            self.params, self.opt_state, raw = self.update(self.params, self.opt_state, batch)
            history.append(raw)
        means = {key: float(np.mean([float(raw[key]) for raw in history])) for key in history[0]}
        return {**means, "grad_norm": float(history[-1]["grad_norm"])}


def sample_rows(rollout: Rollout, count: int) -> list[dict]:
    """The first `count` completions (the first group first) with each judge's verdict."""
    columns = (rollout.items, rollout.generations, rollout.judged, rollout.rewards.flat, rollout.advantages.flat)
    return [{"prompt": item["prompt"], "expected_answer": item["expected_answer"], "completion": generation.text,
             "stopped": generation.stopped, "reward": float(reward), "judges": judged, "advantage": float(advantage)}
            for item, generation, judged, reward, advantage in zip(*columns, strict=True)][:count]


def length_metrics(generations: list[Generation]) -> dict:
    lengths = [len(g.token_ids) for g in generations]
    return {
        "completion_length_mean": float(np.mean(lengths)),
        "completion_length_max": int(max(lengths)),
        "truncated_fraction": float(np.mean([not g.stopped for g in generations])),
    }
