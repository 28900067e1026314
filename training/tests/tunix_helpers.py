"""Shared by the Tunix backend's test modules: small arithmetic rows and fast compilation of tiny models."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import jax

from training.render import render_tunix_sft


def arithmetic_rows(count: int = 24) -> list[dict]:
    rng = random.Random(7)
    rows = []
    for n in range(count):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        trace = {"prompt": f"What is {a} + {b}?", "final_answer": str(a + b),
                 "steps": [{"i": 0, "type": "compute", "content": f"{a} + {b} = {a + b}"}]}
        rows.append(render_tunix_sft(trace, f"t{n}"))
    return rows


@contextlib.contextmanager
def fast_compilation(cache_dir: str) -> Iterator[None]:
    """XLA compiling is most of a Tunix test module's time on a 2-core CPU: several runs compile identical
    programs, so a disk cache local to the module compiles each once, and the tiny models do not need XLA's
    slower optimisation passes. Every setting is restored afterwards."""
    from jax.experimental.compilation_cache import compilation_cache as jax_cache

    settings = {
        "jax_compilation_cache_dir": cache_dir,
        "jax_persistent_cache_min_compile_time_secs": 0.0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
        "jax_disable_most_optimizations": True,
    }
    saved = {name: jax.config.values[name] for name in settings}
    for name, value in settings.items():
        jax.config.update(name, value)
    jax_cache.reset_cache()
    try:
        yield
    finally:
        for name, value in saved.items():
            jax.config.update(name, value)
        jax_cache.reset_cache()
