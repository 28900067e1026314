"""dev-reasoning-v1: the default training set, 70 % word problems and 30 % synthetic tasks.

Category counts are exact (largest share first, the seed breaks ties) and the order is shuffled.
Prompts are unique within a run while a category still has unseen prompts, and never eval-owned.
"""

from __future__ import annotations

import random

from training.generators import synthetic, word_problems
from training.generators.base import (
    MAX_SEED,
    OWNERSHIP_SCHEME,
    Category,
    GeneratedSet,
    Task,
    Template,
    allocate,
    check_int,
    count_by,
    is_eval_owned,
    reasoning_synthetic_split,
    set_manifest,
    shuffled_schedule,
    trace_from_task,
)

NAME, VERSION = "dev-reasoning", "v1"
GENERATOR = f"{NAME}-{VERSION}"
# 2: in-distribution numbers narrowed to small fact tables (times table, one-digit sums and
# differences); the out-of-distribution ranges are unchanged.
GENERATOR_VERSION = "2"
DEFAULT_COUNT, DEFAULT_SEED, MAX_COUNT = 2000, 1, 100_000
REASONING_CATEGORIES: tuple[Category, ...] = word_problems.CATEGORIES
SYNTHETIC_CATEGORIES: tuple[Category, ...] = synthetic.CATEGORIES
CATEGORIES = {category.name: category for category in (*REASONING_CATEGORIES, *SYNTHETIC_CATEGORIES)}
# Draws per item before a repeated prompt is accepted; only a saturated category gets that far.
_MAX_DRAWS = 64


def category_quotas(count: int, rng: random.Random, reasoning_categories=REASONING_CATEGORIES,
                    synthetic_categories=SYNTHETIC_CATEGORIES) -> dict[str, int]:
    reasoning, synthetic_count = reasoning_synthetic_split(count)
    return {
        **allocate(reasoning, [c.name for c in reasoning_categories], rng),
        **allocate(synthetic_count, [c.name for c in synthetic_categories], rng),
    }


def draw_training_task(rng: random.Random, category: Category, seen: set[str],
                       wide_share: float = 0.0) -> tuple[Template, Task, bool]:
    """A task (and whether it used the wide number ranges, `wide_share` of the scalable templates'
    draws) whose prompt is never eval-owned and, if at all possible, unseen. With no wide share no
    extra random number is drawn, so v1's sequence is unchanged."""
    repeat = None
    for _ in range(_MAX_DRAWS):
        template = rng.choice(category.train_templates)
        wide = bool(wide_share) and template.scalable and rng.random() < wide_share
        drawn = template.build(rng, wide)
        if is_eval_owned(drawn.prompt):
            continue
        if drawn.prompt not in seen:
            return template, drawn, wide
        repeat = repeat or (template, drawn, wide)
    if repeat is None:
        raise RuntimeError(f"Category {category.name!r} gave only eval-owned prompts in {_MAX_DRAWS} draws.")
    return repeat


def dev_reasoning_v1(count: int | None = None, seed: int | None = None) -> GeneratedSet:
    count = check_int("count", DEFAULT_COUNT if count is None else count, 1, MAX_COUNT)
    seed = check_int("seed", DEFAULT_SEED if seed is None else seed, 0, MAX_SEED)
    rng = random.Random(seed)
    traces, seen = [], set()
    for category_name in shuffled_schedule(category_quotas(count, rng), rng):
        category = CATEGORIES[category_name]
        template, drawn, _ = draw_training_task(rng, category, seen)
        seen.add(drawn.prompt)
        traces.append(trace_from_task(drawn, template, category, generator=GENERATOR,
                                      generator_version=GENERATOR_VERSION, seed=seed))
    return GeneratedSet(GENERATOR, traces, _manifest(traces, seed, len(seen)))


def _manifest(traces: list[dict], seed: int, unique_prompts: int) -> dict:
    return dev_manifest(traces, seed, unique_prompts, version=VERSION, generator_version=GENERATOR_VERSION)


def dev_manifest(traces: list[dict], seed: int, unique_prompts: int, *, version: str, generator_version: str,
                 **extra) -> dict:
    """The manifest of a dev-reasoning version: counts by category, task type and difficulty (+ extra)."""
    return set_manifest(
        name=NAME, version=version, generator=f"{NAME}-{version}", generator_version=generator_version,
        kind="traces", seed=seed, items=traces,
        unique_prompts=unique_prompts,
        categories=count_by(traces, lambda t: t["meta"]["category"]),
        task_types=count_by(traces, lambda t: t["meta"]["task_type"]),
        difficulties=count_by(traces, lambda t: t["meta"]["difficulty"]),
        **extra,
        eval_ownership=OWNERSHIP_SCHEME,
    )
