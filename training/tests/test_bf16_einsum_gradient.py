"""`bf16_einsum`'s hand-written backward pass against jax.grad of the plain einsum.

The custom VJP rounds inputs and the incoming gradient to bfloat16 and accumulates in float32; the
reference differentiates an einsum of the same bf16-rounded inputs in float32. They must agree to
bfloat16 precision (8 bits of mantissa) for both operands, whatever the einsum's shape.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from training.model import bf16_einsum

SPECS = [
    ("...i,io->...o", (2, 5, 16), (16, 24)),  # the model's Dense layers
    ("ij,jk->ik", (7, 32), (32, 9)),
    ("bti,io->bto", (3, 4, 8), (8, 12)),
]


def _reference(spec, x, y):
    # The inputs bf16-rounded as the fast path sees them, differentiated in float32.
    return jnp.einsum(spec, x.astype(jnp.bfloat16).astype(jnp.float32), y.astype(jnp.bfloat16).astype(jnp.float32))


@pytest.mark.parametrize(("spec", "x_shape", "y_shape"), SPECS, ids=[s[0] for s in SPECS])
def test_the_custom_backward_pass_matches_autodiff(spec, x_shape, y_shape):
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], x_shape, jnp.float32)
    y = jax.random.normal(keys[1], y_shape, jnp.float32)
    out_shape = jnp.einsum(spec, x, y).shape
    weights = jax.random.normal(keys[2], out_shape, jnp.float32)  # a non-uniform upstream gradient

    def loss(fn):
        return lambda a, b: jnp.sum(fn(spec, a, b) * weights)

    got = jax.grad(loss(bf16_einsum), argnums=(0, 1))(x, y)
    want = jax.grad(loss(_reference), argnums=(0, 1))(x, y)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == jnp.float32 and g.shape == w.shape
        scale = float(jnp.max(jnp.abs(w)))
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), atol=2e-2 * scale, rtol=0)


def test_the_forward_pass_matches_the_reference():
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 16), jnp.float32)
    y = jax.random.normal(jax.random.PRNGKey(2), (16, 8), jnp.float32)
    np.testing.assert_allclose(np.asarray(bf16_einsum("ij,jk->ik", x, y)),
                               np.asarray(_reference("ij,jk->ik", x, y)), rtol=1e-5, atol=1e-5)
