"""Generation for the builtin model: jitted KV-cache decoding in a `lax.while_loop`.

Prompts in a batch are LEFT-padded to one bucketed length P so every row writes its next token
into the same cache slot; row b's positions start at 0 on its first real token and its pad slots
are masked out as keys. The buffer holds S = P + max_new_tokens slots. Decoding stops per row on
end-of-turn or eos (later slots get pad) and the loop exits when every row is done.

`greedy_reference` is the plain decoder the tests and the speed bench compare against: it re-runs
the full model over the whole [B, S] buffer for every new token, with the same layout and masks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from training.checkpoints import CheckpointStore
from training.model import ModelConfig, Transformer, empty_cache
from training.run_files import RUN_CONFIG_FILE, read_json
from training.tokenizers import Tokenizer, load_run_tokenizer, stop_ids

PROMPT_BUCKET = 32


@dataclasses.dataclass
class LoadedModel:
    graphdef: object
    params: object
    config: ModelConfig
    tokenizer: Tokenizer
    run_config: dict
    step: int | None = None


@dataclasses.dataclass
class Generation:
    text: str  # decoded output without the stop token
    token_ids: list[int]  # generated ids, stop token included when there was one
    stopped: bool  # True when the model emitted end-of-turn/eos within the budget


def load_model(out_dir: str | Path, step: int | None = None) -> LoadedModel:
    """The trained params of a builtin run folder (run_config.json + checkpoints/)."""
    out_dir = Path(out_dir)
    config_path = out_dir / RUN_CONFIG_FILE
    if not config_path.exists():
        raise FileNotFoundError(f"{out_dir} is not a training run folder: {RUN_CONFIG_FILE} is missing.")
    run_config = read_json(config_path)
    if run_config.get("backend") != "builtin":
        raise ValueError(f"{out_dir} holds a {run_config.get('backend')!r} run; only builtin runs load here.")
    model_config = ModelConfig(**run_config["model"])
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(model_config, nnx.Rngs(params=0))))
    params, step = CheckpointStore(out_dir, read_only=True).restore_params(abstract, step)
    tokenizer = load_run_tokenizer(out_dir, run_config)
    return LoadedModel(graphdef, params, model_config, tokenizer, run_config, step)


def bucket_length(length: int, bucket: int = PROMPT_BUCKET) -> int:
    return max(bucket, -(-length // bucket) * bucket)


def left_pad(prompt_ids: list[list[int]], length: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """[B, length] token array with each prompt right-aligned, and each row's pad count."""
    tokens = np.full((len(prompt_ids), length), pad_id, dtype=np.int32)
    pads = np.zeros(len(prompt_ids), dtype=np.int32)
    for row, ids in enumerate(prompt_ids):
        if len(ids) > length:
            raise ValueError(f"Prompt {row} has {len(ids)} tokens, more than the {length} allowed.")
        pads[row] = length - len(ids)
        tokens[row, pads[row]:] = ids
    return tokens, pads


def _positions(slots: jax.Array, pads: jax.Array) -> jax.Array:
    """Rotary positions [B, T] of buffer slots [T] for rows with `pads` leading pad slots."""
    return jnp.maximum(slots[None, :] - pads[:, None], 0)


def _mask(query_slots: jax.Array, pads: jax.Array, buffer_len: int) -> jax.Array:
    """[B, T, S]: a query attends to earlier-or-equal slots that are not its row's left padding."""
    keys = jnp.arange(buffer_len)
    causal = keys[None, None, :] <= query_slots[None, :, None]
    return causal & (keys[None, None, :] >= pads[:, None, None])


def _nucleus(logits: jax.Array, top_p: float) -> jax.Array:
    """Logits outside the smallest set of tokens whose probability reaches `top_p` become -inf."""
    ordered = jnp.sort(logits, axis=-1)[..., ::-1]
    probs = jax.nn.softmax(ordered, axis=-1)
    before = jnp.cumsum(probs, axis=-1) - probs  # mass of the tokens ranked above each one
    kept = jnp.where(before < top_p, ordered, jnp.inf)
    cutoff = jnp.min(kept, axis=-1, keepdims=True)  # the least likely token still kept
    return jnp.where(logits >= cutoff, logits, -jnp.inf)


def _pick(logits: jax.Array, key: jax.Array, temperature: float, top_p: float = 1.0) -> jax.Array:
    if temperature <= 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    scaled = logits / temperature
    if top_p < 1.0:
        scaled = _nucleus(scaled, top_p)
    return jax.random.categorical(key, scaled, axis=-1).astype(jnp.int32)


def _decode_with_cache(graphdef, params, cfg, prompt, pads, key, *, max_new, temperature, stops, pad_id,
                       top_p=1.0):
    batch, prompt_len = prompt.shape
    buffer_len = prompt_len + max_new
    model = nnx.merge(graphdef, params)
    prompt_slots = jnp.arange(prompt_len)
    logits, cache = model(
        prompt, _positions(prompt_slots, pads), _mask(prompt_slots, pads, buffer_len),
        cache=empty_cache(cfg, batch, buffer_len), cache_index=0,
    )
    stop_array = jnp.asarray(stops, jnp.int32)

    def cond(carry):
        _, _, i, _, done, _ = carry
        return (i < max_new) & ~jnp.all(done)

    def body(carry):
        cache, out, i, next_logits, done, key = carry
        token = _pick(next_logits, jax.random.fold_in(key, i), temperature, top_p)
        token = jnp.where(done, pad_id, token)
        out = out.at[:, i].set(token)
        done = done | jnp.isin(token, stop_array)
        slot = prompt_len + i
        slot_array = slot[None]
        logits, cache = model(
            token[:, None], _positions(slot_array, pads), _mask(slot_array, pads, buffer_len),
            cache=cache, cache_index=slot,
        )
        return cache, out, i + 1, logits[:, -1], done, key

    out = jnp.full((batch, max_new), pad_id, jnp.int32)
    init = (cache, out, jnp.asarray(0, jnp.int32), logits[:, -1], jnp.zeros(batch, bool), key)
    return jax.lax.while_loop(cond, body, init)[1]


_decode_jit = jax.jit(
    _decode_with_cache,
    static_argnames=("graphdef", "cfg", "max_new", "temperature", "stops", "pad_id", "top_p"),
)


def _to_generations(tokenizer: Tokenizer, out: np.ndarray, count: int, stop: bool = True) -> list[Generation]:
    stops = set(stop_ids(tokenizer)) if stop else set()
    results = []
    for row in out[:count]:
        ids = [int(t) for t in row]
        stop_at = next((n for n, t in enumerate(ids) if t in stops), None)
        kept = ids if stop_at is None else ids[: stop_at + 1]
        text_ids = kept if stop_at is None else kept[:-1]
        results.append(Generation(tokenizer.decode(text_ids), kept, stop_at is not None))
    return results


def _encode_batch(loaded: LoadedModel, prompts: list[str], batch_size: int, prompt_len: int = 0):
    ids = [loaded.tokenizer.encode(p) for p in prompts]
    if any(not row for row in ids):
        raise ValueError("Every prompt must encode to at least one token.")
    padded = ids + [ids[0]] * (batch_size - len(ids))  # fill the batch so the shape never changes
    length = bucket_length(max(prompt_len, *(len(row) for row in padded)))
    return left_pad(padded, length, int(loaded.tokenizer.pad_id))


def prompt_length(loaded: LoadedModel, prompts: list[str]) -> int:
    """One padded prompt length for all `prompts`, so batches of them share one compiled program."""
    return bucket_length(max(len(loaded.tokenizer.encode(p)) for p in prompts))


def generate_batch(loaded: LoadedModel, prompts: list[str], max_new_tokens: int, temperature: float = 0.0,
                   seed: int = 0, batch_size: int | None = None, stop: bool = True,
                   prompt_len: int = 0, top_p: float = 1.0) -> list[Generation]:
    """KV-cache generation for up to `batch_size` prompts (already rendered chat prompts).

    stop=False ignores end-of-turn/eos and always generates max_new_tokens (for speed benches);
    prompt_len pads prompts to at least that many tokens (see `prompt_length`); top_p < 1 samples
    from the nucleus of that much probability (only when temperature > 0)."""
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
    batch_size = batch_size or len(prompts)
    if not 0 < len(prompts) <= batch_size:
        raise ValueError(f"Need 1..{batch_size} prompts per batch, got {len(prompts)}.")
    tokens, pads = _encode_batch(loaded, prompts, batch_size, prompt_len)
    out = _decode_jit(
        loaded.graphdef, loaded.params, loaded.config, jnp.asarray(tokens), jnp.asarray(pads),
        jax.random.key(seed), max_new=int(max_new_tokens), temperature=float(temperature),
        stops=stop_ids(loaded.tokenizer) if stop else (), pad_id=int(loaded.tokenizer.pad_id),
        top_p=float(top_p),
    )
    return _to_generations(loaded.tokenizer, np.asarray(out), len(prompts), stop)


def generate(loaded: LoadedModel, prompts: list[str], max_new_tokens: int = 256, temperature: float = 0.0,
             seed: int = 0, batch_size: int = 16) -> list[Generation]:
    """Generate for any number of prompts, `batch_size` at a time (the last batch is filled up)."""
    results: list[Generation] = []
    shared_len = prompt_length(loaded, prompts)
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        results.extend(generate_batch(loaded, chunk, max_new_tokens, temperature, seed + start, batch_size,
                                      prompt_len=shared_len))
    return results


def make_full_forward(graphdef):
    """Jitted logits of the whole [B, S] buffer with left-padding-aware positions and mask."""

    @jax.jit
    def forward(params, buffer, pads):
        slots = jnp.arange(buffer.shape[1])
        model = nnx.merge(graphdef, params)
        return model(buffer, _positions(slots, pads), _mask(slots, pads, buffer.shape[1]))

    return forward


def greedy_reference(loaded: LoadedModel, prompts: list[str], max_new_tokens: int, forward=None,
                     stop: bool = True) -> list[Generation]:
    """Greedy decoding by re-running the full model for every token: slow, simple, the reference."""
    forward = forward or make_full_forward(loaded.graphdef)
    tokens, pads = _encode_batch(loaded, prompts, len(prompts))
    prompt_len, pad_id = tokens.shape[1], int(loaded.tokenizer.pad_id)
    buffer = np.full((len(prompts), prompt_len + max_new_tokens), pad_id, dtype=np.int32)
    buffer[:, :prompt_len] = tokens
    done = np.zeros(len(prompts), dtype=bool)
    stops = np.asarray(stop_ids(loaded.tokenizer) if stop else (), dtype=np.int32)
    for i in range(max_new_tokens):
        logits = forward(loaded.params, jnp.asarray(buffer), jnp.asarray(pads))
        token = np.asarray(jnp.argmax(logits[:, prompt_len + i - 1], axis=-1)).astype(np.int32)
        token = np.where(done, pad_id, token)
        buffer[:, prompt_len + i] = token
        done |= np.isin(token, stops)
        if done.all():
            break
    return _to_generations(loaded.tokenizer, buffer[:, prompt_len:], len(prompts), stop)
