"""dev-reasoning-v2: the dev-reasoning-v1 tasks with traces a small model can follow.

The same twelve categories, 70/30 mix and eval ownership as v1 (v1 itself is unchanged, byte for
byte). What changed, and why:

* Steps do one thing each, computable from the line above: arithmetic with a carry or a borrow and
  products beyond the times table are worked in columns (training.generators.scratchpad); string
  tasks spell the word with positions first; numbers are compared digit by digit.
* Wide numbers too: WIDE_SHARE of the items of every template that has numbers use the wide ranges
  (the `large` variants), so the columns are learned on long numbers as well and the training
  distribution still covers v1's small one. The held-out templates (wording eval-v1 keeps for its
  out-of-distribution section) are never used.
* Several phrasings per arithmetic and string family; every v1 phrasing is one of them, so eval-v1's
  in-distribution prompts are still in distribution.
"""

from __future__ import annotations

import dataclasses
import random

from training.generators import synthetic_v2, word_problems
from training.generators.base import (
    MAX_SEED,
    Category,
    GeneratedSet,
    Task,
    Template,
    check_int,
    count_by,
    shuffled_schedule,
    trace_from_task,
)
from training.generators.dev_reasoning import NAME, category_quotas, dev_manifest, draw_training_task
from training.generators.scratchpad import expand_step

VERSION = "v2"
GENERATOR = f"{NAME}-{VERSION}"
# 3: the dev-reasoning generator after v1's "2": one-thing-per-step traces, column arithmetic,
# wide number ranges and more phrasings (a new dataset version, so v1 keeps its bytes).
GENERATOR_VERSION = "3"
DEFAULT_COUNT, DEFAULT_SEED, MAX_COUNT = 2000, 1, 100_000
WIDE_SHARE = 0.2


def with_scratchpad(template: Template) -> Template:
    """A v1 word-problem template whose compute steps get their columns in front."""

    def build(rng: random.Random, large: bool) -> Task:
        drawn = template.build(rng, large)
        steps = tuple(step for kind, content in drawn.steps for step in expand_step(kind, content))
        return dataclasses.replace(drawn, steps=steps)

    return dataclasses.replace(template, build=build)


REASONING_CATEGORIES: tuple[Category, ...] = tuple(
    Category(c.name, c.task_type, tuple(with_scratchpad(t) for t in c.train_templates))
    for c in word_problems.CATEGORIES)
SYNTHETIC_CATEGORIES: tuple[Category, ...] = synthetic_v2.CATEGORIES
CATEGORIES = {category.name: category for category in (*REASONING_CATEGORIES, *SYNTHETIC_CATEGORIES)}


def dev_reasoning_v2(count: int | None = None, seed: int | None = None) -> GeneratedSet:
    count = check_int("count", DEFAULT_COUNT if count is None else count, 1, MAX_COUNT)
    seed = check_int("seed", DEFAULT_SEED if seed is None else seed, 0, MAX_SEED)
    rng = random.Random(seed)
    traces, seen = [], set()
    quotas = category_quotas(count, rng, REASONING_CATEGORIES, SYNTHETIC_CATEGORIES)
    for category_name in shuffled_schedule(quotas, rng):
        category = CATEGORIES[category_name]
        template, drawn, wide = draw_training_task(rng, category, seen, WIDE_SHARE)
        seen.add(drawn.prompt)
        trace = trace_from_task(drawn, template, category, generator=GENERATOR,
                                generator_version=GENERATOR_VERSION, seed=seed)
        trace["meta"]["number_range"] = "wide" if wide else "small"
        traces.append(trace)
    return GeneratedSet(GENERATOR, traces, _manifest(traces, seed, len(seen)))


def _manifest(traces: list[dict], seed: int, unique_prompts: int) -> dict:
    return dev_manifest(traces, seed, unique_prompts, version=VERSION, generator_version=GENERATOR_VERSION,
                        number_ranges=count_by(traces, lambda t: t["meta"]["number_range"]),
                        wide_share=str(WIDE_SHARE))
