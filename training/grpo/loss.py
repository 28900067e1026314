"""The clipped, KL-penalised GRPO objective over completion tokens, and its compiled programs."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from training.generate import _mask, _positions
from training.grpo.config import GRPOConfig
from training.trainer import ADAM_B1, ADAM_B2, ADAM_EPS

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
