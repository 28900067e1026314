"""GRPO on the `tunix` backend: Tunix's `GRPOLearner` + `RLCluster` from a tunix run's weights (SPEC §4).

The same GRPOConfig, prompts, reward spec and run files as the builtin GRPO (training.grpo), so the product
treats both alike. What Tunix does here: grouped sampling (its vanilla rollout, a KV-cached sampler), the
reference log-probs, the clipped policy-gradient loss with its KL term, LoRA-only updates and Orbax
checkpoints. What we plug in:

* the policy and the frozen reference both start from the parent run's checkpoint (base weights + its
  LoRA adapters); the policy keeps training those adapters;
* one reward function, the reward spec's weighted judges (training.rewards), which also records what the
  run page shows (per-judge rewards, zero-signal groups, lengths, a sample of completions);
* a data iterator serving step `s`'s prompts as a pure function of (prompts hash, seed, s), as in SFT and
  the builtin GRPO; on resume Tunix fast-forwards past the batches it already trained on;
* checkpoints in `checkpoints/<step>/` like every other run (Tunix's RLCluster would nest them under
  `actor/`), so evaluation, serving, artifact upload and `init_from` read them unchanged.

Differences from the builtin GRPO, by Tunix's design: the sampling seed is the same every step (Tunix's
rollout takes one seed; steps still differ by their prompts and weights), Tunix normalises advantages
itself (the recorded ones are ours, which agree), and entropy is not measured.
"""

from __future__ import annotations

import collections
import os
import shutil
import time
from pathlib import Path

import numpy as np
import orbax.checkpoint as ocp
from tunix.rl import rl_cluster as rl_cluster_lib
from tunix.rl.grpo import grpo_learner
from tunix.rl.rollout import base_rollout
from tunix.sft import checkpoint_manager as tunix_checkpoints

from training import base_weights
from training.backends import tunix_generate
from training.backends.tunix_backend import TINY_BASE_SUBDIR, StepReportHooks
from training.checkpoints import KEEP_LAST, checkpoint_dir
from training.data import DataOrder
from training.generate import Generation
from training.grpo.config import SAMPLES_FILE, GRPOConfig, check_prompts, prompts_hash
from training.grpo.loss import make_optimizer, make_schedule
from training.grpo.trainer import Rollout, grpo_identity, length_metrics, manifest_of, sample_rows
from training.hooks import TrainHooks
from training.init_from import InitRunError, parent_record_of, recorded_init_step
from training.mesh import make_mesh
from training.render import render_prompt
from training.rewards import group_advantages, reward_metrics
from training.run_files import (
    METRICS_FILE,
    RUN_CONFIG_FILE,
    MetricsLog,
    ensure_run_config,
    read_json,
    run_folder_lock,
)
from training.run_result import TrainResult, finish_run, run_timings, utc_now
from training.tokenizers import stop_ids
from training.trainer import LoopOutcome

BASE_COPY_SUBDIR = TINY_BASE_SUBDIR  # a parent's base weights kept in its own folder (gemma3-tiny) are copied here


def grpo_train(config: GRPOConfig | dict, prompts: list[dict], init_dir: str | Path, out_dir: str | Path,
               hooks: TrainHooks | None = None, *, init_step: int | None = None) -> TrainResult:
    """GRPO from tunix run `init_dir` (its latest checkpoint, or `init_step`) into `out_dir`, resuming from
    `out_dir`'s latest checkpoint. Raises InitRunError, before creating `out_dir`, on an unusable parent."""
    config = config if isinstance(config, GRPOConfig) else GRPOConfig.from_dict(config)
    hooks, prompts = hooks or TrainHooks(), check_prompts(prompts)
    init_dir, out_dir = Path(init_dir), Path(out_dir)
    started_at, began = utc_now(), time.perf_counter()
    parent = parent_record(init_dir, recorded_init_step(out_dir, init_step))
    out_dir.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(out_dir):
        run_config = grpo_run_config(config, prompts_hash(prompts), init_dir, parent, out_dir)
        ensure_run_config(out_dir, run_config)
        run = TunixGRPORun(config, prompts, init_dir, parent["step"], run_config, out_dir, hooks)
        outcome = run.execute()
        manifest = grpo_manifest(run_config, outcome, run_timings(started_at, began), out_dir)
        return finish_run(out_dir, hooks, outcome.status, outcome.final_step, manifest)


def parent_record(init_dir: Path, step: int | None) -> dict:
    """The parent's run_config plus the checkpoint step GRPO starts from, checked without loading weights."""
    try:
        run_config = read_json(init_dir / RUN_CONFIG_FILE)
    except (FileNotFoundError, ValueError) as exc:
        raise InitRunError(f"Cannot start from {str(init_dir)!r}: it holds no readable run_config.json.") from exc
    if run_config.get("backend") != "tunix":
        raise InitRunError(f"Cannot start from {str(init_dir)!r}: it is a {run_config.get('backend')!r} run, "
                           "not a tunix one.")
    steps = tunix_generate.checkpoint_steps(init_dir)
    if not steps or (step is not None and step not in steps):
        have = f"it has {', '.join(map(str, steps))}" if steps else "it has none"
        raise InitRunError(f"Cannot start from {str(init_dir)!r}: no checkpoint at step {step} ({have}).")
    try:
        model_dir = tunix_generate.run_base_dir(init_dir, run_config)
    except (base_weights.BaseWeightsMissing, base_weights.BaseWeightsChanged) as exc:
        raise InitRunError(f"Cannot start from {str(init_dir)!r}: {exc}") from exc
    return {"run_config": run_config, "step": steps[-1] if step is None else step, "model_dir": model_dir}


def grpo_run_config(config: GRPOConfig, data_hash: str, init_dir: Path, parent: dict, out_dir: Path) -> dict:
    """run_config.json: what tunix_generate needs to load the run (its parent's model spec and base
    weights, by a portable name), plus the algorithm, the reward spec and where the weights came from."""
    source = parent["run_config"]
    model_dir = parent["model_dir"]
    if Path(model_dir).resolve().is_relative_to(init_dir.resolve()):
        model_dir = copy_base_weights(model_dir, out_dir)  # weights kept inside the parent's folder travel along
    return {
        "backend": "tunix",
        **grpo_identity(config, data_hash, parent_record_of(init_dir, source, parent["step"]), source),
        "tunix_model": tunix_generate.run_model_spec(source),
        "model_family": source.get("model_family"),
        "model_dir": base_weights.portable_name(model_dir, out_dir),
        "base_weights": source.get("base_weights"),
        "base_weights_sha256": source.get("base_weights_sha256"),
        "tokenizer": source.get("tokenizer"),
    }


def copy_base_weights(model_dir: Path, out_dir: Path) -> Path:
    target = out_dir / BASE_COPY_SUBDIR
    if not target.exists():
        partial = target.with_name(BASE_COPY_SUBDIR + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(model_dir, partial)
        os.replace(partial, target)  # a run killed mid-copy never leaves half a model behind
    return target


def grpo_manifest(run_config: dict, outcome: LoopOutcome, timings: dict, out_dir: Path) -> dict:
    recorded = ("tunix_model", "model_dir", "base_weights", "tokenizer")
    return manifest_of(run_config, outcome, timings, out_dir, recorded, mesh=outcome.mesh)


class RLTokenizer:
    """Tunix's tokenizer protocol over ours: Tunix hands prompts over as numpy strings, which SentencePiece
    refuses, so every text is made a `str` first."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def encode(self, text, **_) -> list[int]:
        return self.tokenizer.encode(str(text))

    def decode(self, ids, **_) -> str:
        return self.tokenizer.decode(ids)

    def bos_id(self) -> int:
        return self.tokenizer.bos_id

    def eos_id(self) -> int:
        return self.tokenizer.eos_id

    def pad_id(self) -> int:
        return self.tokenizer.pad_id


class StepRecorder(StepReportHooks):
    """Scores each rollout (as Tunix's reward function) and, when its update is done, writes the step's
    metrics line and every `sample_every` steps a sample of its completions."""

    def __init__(self, run: TunixGRPORun, outcome: LoopOutcome):
        self.run, self.outcome, self.cfg = run, outcome, run.config
        self.schedule = make_schedule(run.config)
        # Tunix reports an update once the next one is dispatched, so the next rollout may already be
        # scored: rollouts wait here, in order, with the seconds their sampling took.
        self.rollouts: collections.deque[tuple[Rollout, float]] = collections.deque()
        self.updates: list[dict] = []
        self._sampled: collections.deque[list[int]] = collections.deque()  # generated ids, in order
        self._sample_seconds = 0.0
        self._last_report = time.perf_counter()

    def timing_generate(self, generate):
        """The cluster's `generate`, keeping each completion's generated ids (the reward function only sees
        text) and the seconds sampling took."""
        def timed(*args, **kwargs):
            began = time.perf_counter()
            output = generate(*args, **kwargs)
            self._sample_seconds += time.perf_counter() - began
            self._sampled.extend([int(i) for i in ids] for ids in output.tokens)
            return output

        return timed

    # -- the reward function: Tunix passes every dataset column, repeated per completion, by name --
    def judges(self, prompts, completions, expected_answer, **_) -> list[float]:
        cfg = self.cfg
        items = [{"prompt": self.run.raw_prompts[str(p)], "expected_answer": str(e)}
                 for p, e in zip(prompts, expected_answer, strict=True)]
        texts = [str(text) for text in completions]
        scored = [self.run.spec.reward(text, item["expected_answer"]) for text, item in zip(texts, items, strict=True)]
        rewards = np.asarray([total for total, _ in scored]).reshape(-1, cfg.group_size)
        advantages, flat = group_advantages(rewards)
        generations = [self._generation(text) for text in texts]
        rollout = Rollout(items, [str(p) for p in prompts], generations, [j for _, j in scored], rewards,
                          advantages, flat)
        self.rollouts.append((rollout, self._sample_seconds))
        self._sample_seconds = 0.0
        return [float(total) for total, _ in scored]

    def _generation(self, text: str) -> Generation:
        """The completion with its generated ids (without the stop token, as the builtin generator's are)."""
        ids = self._sampled.popleft()
        stopped = bool(ids) and ids[-1] in stop_ids(self.run.tokenizer)
        return Generation(text, ids[:-1] if stopped else ids, stopped or len(ids) < self.cfg.max_new_tokens)

    # -- Tunix's training hooks: one call per optimizer update --
    def on_train_step_end(self, train_ctx, train_step: int, train_loss: float) -> None:
        logger = train_ctx.metrics_logger
        self.updates.append({"loss": float(train_loss),
                             **{key: self._last(logger, name) for key, name in
                                (("kl", "kl"), ("clip_fraction", "pg_clipfrac"), ("grad_norm", "grad_norm"))}})
        if len(self.updates) % self.cfg.inner_updates == 0:
            self._record_step(int(train_step) // self.cfg.inner_updates)

    @staticmethod
    def _last(logger, name: str) -> float | None:
        for prefix in ("actor", ""):
            if logger.metric_exists(prefix, name, "train"):
                return float(logger.get_metric_history(prefix, name, "train")[-1])
        return None

    def _record_step(self, step: int) -> None:
        (rollout, sample_seconds), cfg = self.rollouts.popleft(), self.cfg
        now = time.perf_counter()
        seconds, self._last_report = now - self._last_report, now
        means = {key: float(np.mean([u[key] for u in self.updates if u[key] is not None]))
                 for key in self.updates[0] if any(u[key] is not None for u in self.updates)}
        metrics = {
            "step": step,
            "lr": float(self.schedule((step - 1) * cfg.inner_updates)),
            **means,
            **reward_metrics(rollout.rewards, rollout.judged),
            "zero_signal_fraction": float(rollout.flat.mean()),
            **length_metrics(rollout.generations),
            "sample_seconds": sample_seconds,
            "update_seconds": max(seconds - sample_seconds, 0.0),
            "epoch": round(self.run.order.epoch_of_step(step), 4),
        }
        self.run.metrics_log.append(metrics)
        self.run.hooks.on_step(metrics)
        if cfg.sample_every and step % cfg.sample_every == 0:
            samples = sample_rows(rollout, cfg.sample_count)
            self.run.samples_log.append({"step": step, "samples": samples})
            self.run.hooks.on_samples(step, samples)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            self.run.announce_checkpoint(step)
        self.outcome.record(metrics, seconds)
        self.updates = []


class TunixGRPORun:
    """One run: policy and reference from the parent, an RLCluster on one mesh, a GRPOLearner on our data."""

    def __init__(self, config: GRPOConfig, prompts: list[dict], init_dir: Path, init_step: int, run_config: dict,
                 out_dir: Path, hooks: TrainHooks):
        self.config, self.prompts, self.init_dir, self.init_step = config, prompts, init_dir, init_step
        self.run_config, self.out_dir, self.hooks = run_config, out_dir, hooks
        self.spec = config.reward_spec
        self.rendered = [render_prompt(item["prompt"]) for item in prompts]
        self.raw_prompts = {text: item["prompt"] for text, item in zip(self.rendered, prompts, strict=True)}
        self.order = DataOrder(run_config["data_hash"], config.seed, len(prompts), config.prompts_per_step)
        self.metrics_log = MetricsLog(out_dir / METRICS_FILE)
        self.samples_log = MetricsLog(out_dir / SAMPLES_FILE)
        self.mesh = make_mesh("auto")
        self.tokenizer = None
        self._announced: set[int] = set()

    def execute(self) -> LoopOutcome:
        with self.mesh:
            return self._execute()

    def _execute(self) -> LoopOutcome:
        reference, self.tokenizer, _ = tunix_generate.load_run_weights(self.init_dir, self.mesh, step=self.init_step)
        policy, _, _ = tunix_generate.load_run_weights(self.init_dir, self.mesh, step=self.init_step)
        cluster = self.make_cluster(policy, reference)
        trainer = cluster.actor_trainer
        start = self.restore(trainer)
        outcome = LoopOutcome("completed", start_step=start, final_step=start,
                              data_stats={"prompts": len(self.prompts)},
                              mesh={"shape": dict(self.mesh.shape), "devices": int(self.mesh.devices.size)})
        self.metrics_log.keep_through(start)
        self.samples_log.keep_through(start)
        if start:
            self.hooks.on_log(f"resumed from checkpoint at step {start}")
        self.hooks.on_log(f"tunix GRPO on {len(self.prompts)} prompts, {self.config.group_size} completions each, "
                          f"steps {start + 1}..{self.config.max_steps}, on {self.mesh.devices.size} device(s)")
        recorder = StepRecorder(self, outcome)
        trainer.with_training_hooks(recorder)
        cluster.generate = recorder.timing_generate(cluster.generate)  # this cluster's only, not the class's
        learner = grpo_learner.GRPOLearner(cluster, self.algo_config(), [recorder.judges])
        data = StepPrompts(self, recorder)
        learner.train(data)  # closes the cluster, which saves the last step's checkpoint
        if data.cancel_reason:
            outcome.status, outcome.cancel_reason = data.stop_status, data.cancel_reason
        outcome.final_step = trainer.train_steps // self.config.inner_updates
        for step in tunix_generate.checkpoint_steps(self.out_dir):  # the saves still running were waited for
            if step > start:
                self.announce_checkpoint(step)
        return outcome

    def announce_checkpoint(self, step: int) -> None:
        """Tell the hooks once step `step`'s checkpoint is complete: Orbax saves in the background and names
        the step's folder only when it is whole; a save still running is announced after the last one."""
        if step in self._announced or not (checkpoint_dir(self.out_dir) / str(step)).is_dir():
            return
        self._announced.add(step)
        self.hooks.on_log(f"checkpoint saved at step {step}")
        self.hooks.on_checkpoint(step)

    def algo_config(self) -> grpo_learner.GRPOConfig:
        cfg = self.config
        return grpo_learner.GRPOConfig(num_generations=cfg.group_size, num_iterations=cfg.inner_updates,
                                       beta=cfg.beta, epsilon=cfg.epsilon)

    def make_cluster(self, policy, reference) -> rl_cluster_lib.RLCluster:
        cfg, tokenizer = self.config, self.tokenizer
        longest = max(len(tokenizer.encode(text)) + 1 for text in self.rendered)  # + the BOS the sampler adds
        prompt_len = 1 << (longest - 1).bit_length()
        rollout = base_rollout.RolloutConfig(
            max_tokens_to_generate=cfg.max_new_tokens, max_prompt_length=prompt_len,
            kv_cache_size=prompt_len + cfg.max_new_tokens + 1, temperature=cfg.temperature, top_p=cfg.top_p,
            seed=cfg.seed, eos_tokens=list(stop_ids(tokenizer)))
        training = rl_cluster_lib.RLTrainingConfig(
            actor_optimizer=make_optimizer(cfg), eval_every_n_steps=cfg.max_steps * cfg.inner_updates + 1,
            max_steps=cfg.max_steps * cfg.inner_updates, checkpoint_root_directory=None, pbar_description=None)
        roles = {role: self.mesh for role in (rl_cluster_lib.Role.ACTOR, rl_cluster_lib.Role.REFERENCE,
                                              rl_cluster_lib.Role.ROLLOUT)}
        cluster_config = rl_cluster_lib.ClusterConfig(role_to_mesh=roles, rollout_engine="vanilla",
                                                      offload_to_cpu=False, training_config=training,
                                                      rollout_config=rollout)
        return rl_cluster_lib.RLCluster(actor=policy, reference=reference, tokenizer=RLTokenizer(tokenizer),
                                        cluster_config=cluster_config)

    def restore(self, trainer) -> int:
        """Point the policy's trainer at `checkpoints/` and restore its latest checkpoint (policy adapters and
        optimizer state); the cluster was built without a checkpoint folder so that Tunix's own `actor/`
        subfolder never exists. Returns the GRPO step restored (0 for a fresh run)."""
        every = self.config.checkpoint_every * self.config.inner_updates
        policy = (ocp.checkpoint_managers.FixedIntervalPolicy(every) if every
                  else ocp.checkpoint_managers.SpecificStepsPolicy(()))
        trainer.checkpoint_manager = tunix_checkpoints.CheckpointManager(
            str(checkpoint_dir(self.out_dir)),
            ocp.CheckpointManagerOptions(save_decision_policy=policy, max_to_keep=KEEP_LAST))
        updates, metadata = trainer.checkpoint_manager.maybe_restore(
            trainer.model, trainer.optimizer, restore_only_lora_params=bool(self.run_config["tunix_model"]["lora"]))
        trainer._train_steps, trainer._restored_custom_metadata = updates, metadata  # noqa: SLF001
        trainer._iter_steps = updates  # noqa: SLF001 (one micro-batch per update: no accumulation)
        return updates // self.config.inner_updates


class StepPrompts:
    """The learner's data: step `s`'s prompts (rendered) and expected answers, a pure function of (prompts,
    seed, s), from step 0 (Tunix skips the ones a resumed run trained on). Stops early on a cancel."""

    def __init__(self, run: TunixGRPORun, recorder: StepRecorder):
        self.run, self.recorder = run, recorder
        self.cancel_reason: str | None = None
        self.stop_status: str | None = None

    def __iter__(self):
        run = self.run
        for step in range(run.config.max_steps):
            if run.hooks.should_cancel():
                self.cancel_reason, self.stop_status = run.hooks.cancel_reason(), run.hooks.stop_status()
                return
            indices = run.order.indices_for_step(step)
            yield {"prompts": np.asarray([run.rendered[i] for i in indices]),
                   "expected_answer": np.asarray([run.prompts[i]["expected_answer"] for i in indices])}

