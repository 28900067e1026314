"""One GRPO run: sample, score, update, checkpoint; resumable to the same weights."""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from training.checkpoints import CheckpointStore
from training.data import DataOrder
from training.flops import param_count
from training.generate import Generation, LoadedModel, generate_batch, left_pad, prompt_length
from training.grpo.config import (
    ALGORITHM,
    SAMPLES_FILE,
    GRPOConfig,
    check_prompts,
    prompts_hash,
    step_seed,
)
from training.grpo.loss import PROGRAM_KEYS, completion_batch, make_schedule, programs
from training.hooks import TrainHooks
from training.init_from import (
    copy_tokenizer,
    identity_hash,
    init_record,
    load_init,
    parent_backend,
    recorded_init_step,
)
from training.render import render_prompt
from training.rewards import group_advantages, reward_metrics
from training.run_files import (
    METRICS_FILE,
    MetricsLog,
    code_version,
    context_length,
    device_info,
    ensure_run_config,
    read_metrics,
    run_folder_lock,
)
from training.run_result import TrainResult, finish_run, run_ending, run_timings, utc_now
from training.trainer import LoopOutcome

# --- the run ---------------------------------------------------------------------------------

def grpo_train(config: GRPOConfig | dict, prompts: list[dict], init_dir: str | Path, out_dir: str | Path,
               hooks: TrainHooks | None = None, *, init_step: int | None = None) -> TrainResult:
    """GRPO from the weights of builtin run `init_dir` (its latest checkpoint, or `init_step`) into
    `out_dir`, resuming from `out_dir`'s latest checkpoint if it has one (with the init step it recorded).

    prompts: `{"prompt", "expected_answer"}` items; the prompt is raw user text (rendered here).
    Raises InitRunError, before creating `out_dir`, when `init_dir` is not a builtin run with that checkpoint.
    A tunix parent is trained by Tunix's GRPOLearner (training.backends.tunix_grpo), with the same files."""
    if parent_backend(Path(init_dir)) == "tunix":
        from training.backends.tunix_grpo import grpo_train as tunix_grpo_train

        return tunix_grpo_train(config, prompts, init_dir, out_dir, hooks, init_step=init_step)
    if not isinstance(config, GRPOConfig):
        config = GRPOConfig.from_dict(config)
    hooks = hooks or TrainHooks()
    prompts = check_prompts(prompts)
    init_dir, out_dir = Path(init_dir), Path(out_dir)
    started_at, began = utc_now(), time.perf_counter()
    loaded = load_init(init_dir, recorded_init_step(out_dir, init_step))
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(out_dir):
        run_config = grpo_run_config(config, prompts_hash(prompts), init_dir, loaded)
        ensure_run_config(out_dir, run_config)
        copy_tokenizer(init_dir, out_dir)
        trainer = GRPOTrainer(config, prompts, loaded, run_config, out_dir, hooks)
        outcome = trainer.run()
        manifest = grpo_manifest(run_config, outcome, run_timings(started_at, began), out_dir)
        return finish_run(out_dir, hooks, outcome.status, outcome.final_step, manifest)


def grpo_run_config(config: GRPOConfig, data_hash: str, init_dir: Path, loaded: LoadedModel) -> dict:
    """run_config.json: what training.generate.load_model needs (backend, model, tokenizer), plus the
    algorithm, the reward spec with its judge versions and where the weights came from."""
    source = loaded.run_config
    return {
        "backend": "builtin",
        **grpo_identity(config, data_hash, init_record(init_dir, loaded), source),
        "model": source["model"],
        "tokenizer": source["tokenizer"],
        "tokenizer_sha256": source.get("tokenizer_sha256"),
    }


def grpo_identity(config: GRPOConfig, data_hash: str, init_from: dict, source: dict) -> dict:
    """The run_config.json keys every GRPO run has, whatever its backend; `source` is the parent's run_config."""
    return {
        "algorithm": ALGORITHM,
        "config": config.to_dict(),
        "config_hash": identity_hash(ALGORITHM, config.to_dict(), init_from),
        "data_hash": data_hash,
        "init_from": init_from,
        "reward": config.reward_spec.to_dict(),
        "max_seq_len": context_length(source),  # inherited: what evaluation and serving limit outputs to
    }


def grpo_manifest(run_config: dict, outcome: LoopOutcome, timings: dict, out_dir: Path) -> dict:
    return manifest_of(run_config, outcome, timings, out_dir, ("tokenizer", "tokenizer_sha256"),
                       model={**run_config["model"], "param_count": param_count(outcome.params)})


def manifest_of(run_config: dict, outcome: LoopOutcome, timings: dict, out_dir: Path, recorded: tuple[str, ...],
                **extra) -> dict:
    """A GRPO run's manifest: its identity, the backend's `recorded` run_config keys and `extra` entries,
    and how it ended, with the mean reward of its last ten steps."""
    recent = [line["reward_mean"] for line in read_metrics(out_dir / METRICS_FILE)[-10:]]
    return {
        **{key: run_config[key] for key in ("backend", "algorithm", "config", "config_hash", "init_from", "reward",
                                            *recorded)},
        "data": {"sha256": run_config["data_hash"], **outcome.data_stats},
        "seed": run_config["config"]["seed"],
        "code_version": code_version(),
        "device": device_info(),
        **extra,
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
