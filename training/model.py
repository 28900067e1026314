"""The builtin decoder-only transformer (Flax NNX): pre-RMSNorm blocks, rotary positions, causal
multi-head attention with an optional KV cache, SwiGLU MLP, untied output head.

The model is called functionally everywhere (`nnx.split` once, `nnx.merge` inside jitted code) so
the trainer, the checkpoints and generation all work on plain pytrees of arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from training.tokenizers import ByteTokenizer

ROPE_BASE = 10_000.0
INIT_STD = 0.02
MASK_VALUE = float(jnp.finfo(jnp.float32).min)
CAUSAL_BLOCK = 64  # query rows per block in training attention; see causal_attention


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    d_ff: int
    tokenizer: str = ByteTokenizer.name
    # Matmul input dtype. "bfloat16" multiplies bf16 inputs with float32 accumulation (AMX/AVX512-BF16
    # on recent x86 run it several times faster); params, residual stream, norms, softmax and the
    # loss stay float32 either way.
    compute_dtype: str = "float32"

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


MODEL_PRESETS = {
    # Fast enough for unit tests on a shared 2-core CPU.
    "tiny": ModelConfig(vocab_size=ByteTokenizer.vocab_size, d_model=64, n_layers=2, n_heads=4, d_ff=192),
    # The demo / benchmark model. On a 2-core CPU with a 10-minute budget, d=128 beat d=256: at
    # 16×256 tokens per step it runs ~2× the steps and reached a lower loss and higher accuracy.
    "small": ModelConfig(
        vocab_size=ByteTokenizer.vocab_size, d_model=128, n_layers=4, n_heads=4, d_ff=384,
        compute_dtype="bfloat16",
    ),
}


def model_config_for(preset: str) -> ModelConfig:
    if preset not in MODEL_PRESETS:
        choices = ", ".join(MODEL_PRESETS)
        raise ValueError(f"Unknown builtin model preset {preset!r}; choose one of {choices}.")
    return MODEL_PRESETS[preset]


def split_batch(x: jax.Array) -> jax.Array:
    """Keep activations split along the batch when a step is traced under a mesh (training.mesh): with
    parameters sharded FSDP style, XLA's propagation alone may split attention by heads instead and then
    gather whole tensors to switch back. Without a mesh (one device, generation) it does nothing."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or "fsdp" not in mesh.axis_names:
        return x
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec("fsdp"))


def rotary(x: jax.Array, positions: jax.Array) -> jax.Array:
    """Rotate pairs (x[..., :half], x[..., half:]) by position-dependent angles; x is [B, T, H, D]."""
    half = x.shape[-1] // 2
    freqs = ROPE_BASE ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = positions.astype(jnp.float32)[:, :, None, None] * freqs  # [B, T, 1, half]
    sin, cos = jnp.sin(angles), jnp.cos(angles)
    first, second = x[..., :half], x[..., half:]
    return jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)


def normal_init(std: float):
    """N(0, std²) initializer that samples on the host with numpy when called eagerly.

    Eager jax.random.normal compiles one XLA program per parameter shape, which costs ~2 s per
    process on a CPU; numpy seeded from the (jax) key is instant and just as deterministic. Under
    tracing (nnx.eval_shape, jit) it falls back to jax.random.normal, which only needs shapes there.
    """

    def init(key, shape, dtype=jnp.float32):
        if isinstance(key, jax.core.Tracer):
            return std * jax.random.normal(key, shape, dtype)
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        rng = np.random.default_rng([int(word) for word in np.asarray(key).ravel()])
        return jnp.asarray(rng.normal(0.0, std, shape), dtype)

    return init


def _mixed_einsum_forward(spec: str, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.einsum(spec, x, y, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def bf16_einsum(spec: str, x: jax.Array, y: jax.Array) -> jax.Array:
    """einsum of bf16-cast float32 inputs, accumulated and returned in float32.

    XLA:CPU only takes its fast bf16 path (AMX / AVX512-BF16) when the output is float32, and
    autodiff would transpose into mixed f32×bf16 products that fall back to slow float32; so the
    backward pass is written out: both gradient einsums also take bf16 inputs (the incoming
    gradient is rounded to bf16, as in usual mixed-precision training) and return float32.
    Every index of `spec` must appear in at least two of (x, y, output), which holds for
    matmuls. Only batch-free contractions qualify: XLA:CPU has no bf16×bf16→f32 batched dot, so
    attention scores stay float32.
    """
    return _mixed_einsum_forward(spec, x.astype(jnp.bfloat16), y.astype(jnp.bfloat16))


def _bf16_einsum_fwd(spec, x, y):
    x16, y16 = x.astype(jnp.bfloat16), y.astype(jnp.bfloat16)
    return _mixed_einsum_forward(spec, x16, y16), (x16, y16)


def _bf16_einsum_bwd(spec, residuals, grad):
    x16, y16 = residuals
    grad16 = grad.astype(jnp.bfloat16)
    inputs, out = spec.split("->")
    x_spec, y_spec = inputs.split(",")
    grad_x = _mixed_einsum_forward(f"{out},{y_spec}->{x_spec}", grad16, y16)
    grad_y = _mixed_einsum_forward(f"{x_spec},{out}->{y_spec}", x16, grad16)
    return grad_x, grad_y


bf16_einsum.defvjp(_bf16_einsum_fwd, _bf16_einsum_bwd)


def einsum(spec: str, x: jax.Array, y: jax.Array, compute_dtype: str) -> jax.Array:
    """float32 in, float32 out; the products run in `compute_dtype`."""
    if compute_dtype == "bfloat16":
        return bf16_einsum(spec, x, y)
    return jnp.einsum(spec, x, y)


class Dense(nnx.Module):
    """Bias-free linear layer whose matmul runs in the model's compute dtype."""

    def __init__(self, cfg: ModelConfig, d_in: int, d_out: int, std: float, rngs: nnx.Rngs):
        self.kernel = nnx.Param(normal_init(std)(rngs.params(), (d_in, d_out)))
        self.compute_dtype = cfg.compute_dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        return einsum("...i,io->...o", x, self.kernel[...], self.compute_dtype)


def masked_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """softmax(q·kᵀ, masked) · v with the normalisation applied after the value product.

    Dividing the [B, T, H, D] output instead of the [B, H, T, S] weights, and not differentiating
    through the max (softmax is shift-invariant, so its gradient is exactly zero), removes the
    costliest elementwise passes over the score matrix on CPU; the result is the same softmax."""
    scores = jnp.where(mask[:, None], jnp.einsum("bthd,bshd->bhts", q, k), MASK_VALUE)
    shift = jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True))
    unnormalised = jnp.exp(scores - shift)
    total = jnp.sum(unnormalised, axis=-1)  # [B, H, T]
    attended = jnp.einsum("bhts,bshd->bthd", unnormalised, v)
    return attended / jnp.transpose(total, (0, 2, 1))[..., None]


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, segments: jax.Array | None = None,
                     block: int = CAUSAL_BLOCK) -> jax.Array:
    """Causal self-attention computed one block of query rows at a time: rows [start, end) only
    score keys [0, end), so the all-masked upper triangle (almost half the T×T work) is skipped.

    segments [B, T] (packed rows, see training.packing): a token also sees only its own segment."""
    length = q.shape[1]
    rows = []
    for start in range(0, length, block):
        end = min(start + block, length)
        visible = (jnp.arange(start, end)[:, None] >= jnp.arange(end)[None, :])[None]
        if segments is not None:
            visible = visible & (segments[:, start:end, None] == segments[:, None, :end])
        rows.append(masked_attention(q[:, start:end], k[:, :end], v[:, :end], visible))
    return rows[0] if len(rows) == 1 else jnp.concatenate(rows, axis=1)


class Attention(nnx.Module):
    def __init__(self, cfg: ModelConfig, out_std: float, rngs: nnx.Rngs):
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.qkv = Dense(cfg, cfg.d_model, 3 * cfg.d_model, INIT_STD, rngs)
        self.out = Dense(cfg, cfg.d_model, cfg.d_model, out_std, rngs)

    def __call__(self, x, positions, mask, cache=None, cache_index=None, segments=None):
        batch, length, _ = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(batch, length, 3 * self.n_heads, self.head_dim), 3, axis=2)
        q, k, v = split_batch(q), split_batch(k), split_batch(v)
        q = rotary(q, positions) * (1.0 / math.sqrt(self.head_dim))
        k = rotary(k, positions)
        if cache is not None:
            # Write this chunk's keys/values at cache_index and attend over the whole cache buffer.
            k = jax.lax.dynamic_update_slice_in_dim(cache[0], k, cache_index, axis=1)
            v = jax.lax.dynamic_update_slice_in_dim(cache[1], v, cache_index, axis=1)
            cache = (k, v)
        if mask is None:
            attended = causal_attention(q, k, v, segments)
        else:
            attended = masked_attention(q, k, v, mask)
        attended = attended.reshape(batch, length, -1)
        return self.out(attended), cache


class MLP(nnx.Module):
    def __init__(self, cfg: ModelConfig, out_std: float, rngs: nnx.Rngs):
        self.gate_up = Dense(cfg, cfg.d_model, 2 * cfg.d_ff, INIT_STD, rngs)
        self.down = Dense(cfg, cfg.d_ff, cfg.d_model, out_std, rngs)

    def __call__(self, x):
        gate, up = jnp.split(self.gate_up(x), 2, axis=-1)
        return self.down(jax.nn.silu(gate) * up)


class Block(nnx.Module):
    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        # GPT-2 style: shrink the residual-branch outputs so the stream's variance stays ~constant.
        out_std = INIT_STD / math.sqrt(2 * cfg.n_layers)
        self.attn_norm = nnx.RMSNorm(cfg.d_model, rngs=rngs)
        self.attn = Attention(cfg, out_std, rngs)
        self.mlp_norm = nnx.RMSNorm(cfg.d_model, rngs=rngs)
        self.mlp = MLP(cfg, out_std, rngs)

    def __call__(self, x, positions, mask, cache=None, cache_index=None, segments=None):
        x = split_batch(x)
        attended, cache = self.attn(self.attn_norm(x), positions, mask, cache, cache_index, segments)
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), cache


class Transformer(nnx.Module):
    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        self.config = cfg
        self.embed = nnx.Embed(cfg.vocab_size, cfg.d_model, embedding_init=normal_init(INIT_STD), rngs=rngs)
        self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.n_layers)])
        self.final_norm = nnx.RMSNorm(cfg.d_model, rngs=rngs)
        self.head = Dense(cfg, cfg.d_model, cfg.vocab_size, INIT_STD, rngs)

    def __call__(self, tokens, positions=None, mask=None, cache=None, cache_index=None, segments=None):
        """Logits [B, T, V] (and the updated cache when one is given).

        tokens/positions: [B, T] ints; mask: [B or 1, T, S] bool (plain causal over T when omitted);
        cache: per-layer (k, v) pairs of shape [B, S, H, D], written at `cache_index`; segments:
        [B, T] ints of packed rows, used with the plain causal mask only.
        """
        length = tokens.shape[1]
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(length), tokens.shape)
        x = self.embed(tokens)
        new_cache = []
        for index, block in enumerate(self.blocks):
            layer_cache = None if cache is None else cache[index]
            x, layer_cache = block(x, positions, mask, layer_cache, cache_index, segments)
            new_cache.append(layer_cache)
        logits = self.head(self.final_norm(x))
        return logits if cache is None else (logits, new_cache)


def create_model(cfg: ModelConfig, seed: int) -> Transformer:
    return Transformer(cfg, nnx.Rngs(params=seed))


def empty_cache(cfg: ModelConfig, batch: int, length: int) -> list[tuple[jax.Array, jax.Array]]:
    shape = (batch, length, cfg.n_heads, cfg.head_dim)
    return [(jnp.zeros(shape, jnp.float32), jnp.zeros(shape, jnp.float32)) for _ in range(cfg.n_layers)]
