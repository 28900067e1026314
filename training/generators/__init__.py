"""Deterministic, seeded dataset generators (SPEC §3): training traces and the eval set.

    from training.generators import generate
    dev = generate("dev-reasoning-v1", count=2000, seed=1)   # GeneratedSet(name, items, manifest)

Every generator uses its own `random.Random(seed)`, writes only text authored here, and returns
the same bytes for the same arguments. Training traces validate with `training.trace_schema`;
eval items are `{id, prompt, expected_answer, category, difficulty, section}`.
"""

from __future__ import annotations

from collections.abc import Callable

from training.generators.base import GeneratedSet, is_eval_owned
from training.generators.dev_reasoning import dev_reasoning_v1
from training.generators.dev_reasoning_v2 import dev_reasoning_v2
from training.generators.eval_set import eval_v1
from training.generators.golden import golden_v1
from training.generators.high_card_duel import high_card_duel

GENERATORS: dict[str, Callable[..., GeneratedSet]] = {
    "dev-reasoning-v1": dev_reasoning_v1,
    "dev-reasoning-v2": dev_reasoning_v2,
    "golden-v1": golden_v1,
    "high-card-duel": high_card_duel,
    "eval-v1": eval_v1,
}
TRAINING_GENERATORS = ("dev-reasoning-v1", "dev-reasoning-v2", "golden-v1", "high-card-duel")
EVAL_GENERATORS = ("eval-v1",)


def generate(name: str, *, count: int | None = None, seed: int | None = None) -> GeneratedSet:
    """Run the generator called `name`; ValueError names an unknown generator or a bad argument."""
    if name not in GENERATORS:
        raise ValueError(f"Unknown generator {name!r}; choose one of {', '.join(sorted(GENERATORS))}.")
    return GENERATORS[name](count=count, seed=seed)


__all__ = [
    "EVAL_GENERATORS", "GENERATORS", "GeneratedSet", "TRAINING_GENERATORS", "generate", "is_eval_owned",
]
