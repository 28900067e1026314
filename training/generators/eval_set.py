"""eval-v1: the fixed held-out evaluation set (250 items, fixed seed).

- `in_distribution` (200 items): the dev-reasoning-v1 categories, templates and number ranges, in
  the same 70/30 mix, so a model trained on dev-reasoning-v1 can be held to a high bar on it.
- `out_of_distribution` (50 items): half use larger numbers in the training templates, half use
  held-out templates whose wording training never sees. All are marked `hard`.

Disjoint from training by construction: every eval prompt is eval-owned (`is_eval_owned`), which
dev-reasoning-v1 never emits for any seed, and none is a golden-v1 or High Card Duel prompt (both
finite sets, excluded outright).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from training.generators import golden, high_card_duel
from training.generators.base import (
    OWNERSHIP_SCHEME,
    Category,
    GeneratedSet,
    Task,
    Template,
    count_by,
    is_eval_owned,
    set_manifest,
    shuffled_schedule,
)
from training.generators.dev_reasoning import CATEGORIES, category_quotas
from training.trace_schema import DEFAULT_TRACE_VERSION

NAME, VERSION = "eval", "v1"
GENERATOR = f"{NAME}-{VERSION}"
# 2: in-distribution numbers narrowed to small fact tables (times table, one-digit sums and
# differences); the out-of-distribution ranges are unchanged.
GENERATOR_VERSION = "2"
EVAL_SEED = 20_250_917
IN_DISTRIBUTION_COUNT, OUT_OF_DISTRIBUTION_COUNT = 200, 50
COUNT = IN_DISTRIBUTION_COUNT + OUT_OF_DISTRIBUTION_COUNT
IN_DISTRIBUTION, OUT_OF_DISTRIBUTION = "in_distribution", "out_of_distribution"
_MAX_DRAWS = 500
ITEM_KEYS = ("id", "prompt", "expected_answer", "category", "difficulty", "section")


class _Drawer:
    """Draws eval-owned, unique prompts that no training generator can emit."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.taken: set[str] = set()
        self.excluded = high_card_duel.prompt_space() | golden.prompt_set()

    def draw(self, templates: tuple[Template, ...], large: bool) -> tuple[Template, Task]:
        for _ in range(_MAX_DRAWS):
            template = self.rng.choice(templates)
            drawn = template.build(self.rng, large)
            prompt = drawn.prompt
            if is_eval_owned(prompt) and prompt not in self.taken and prompt not in self.excluded:
                self.taken.add(prompt)
                return template, drawn
        keys = [t.key for t in templates]
        raise RuntimeError(f"No fresh eval-owned prompt from {keys} in {_MAX_DRAWS} draws.")


@dataclass(frozen=True)
class _Drawn:
    item: dict
    task: Task
    template: Template
    large: bool


def _drawn(drawer: _Drawer, category: Category, templates: tuple[Template, ...], *, large: bool,
           section: str) -> _Drawn:
    template, drawn = drawer.draw(templates, large)
    difficulty = "hard" if section == OUT_OF_DISTRIBUTION else template.difficulty
    item = {"prompt": drawn.prompt, "expected_answer": drawn.answer, "category": category.name,
            "difficulty": difficulty, "section": section}
    return _Drawn(item, drawn, template, large)


def _in_distribution(drawer: _Drawer) -> list[_Drawn]:
    schedule = shuffled_schedule(category_quotas(IN_DISTRIBUTION_COUNT, drawer.rng), drawer.rng)
    return [_drawn(drawer, CATEGORIES[name], CATEGORIES[name].train_templates, large=False,
                   section=IN_DISTRIBUTION) for name in schedule]


def _out_of_distribution(drawer: _Drawer) -> list[_Drawn]:
    categories = list(CATEGORIES.values())
    items = []
    for index in range(OUT_OF_DISTRIBUTION_COUNT):
        # Pairs walk the categories, so each category gets one held-out and one large-number item.
        category = categories[(index // 2) % len(categories)]
        if index % 2 == 0:
            items.append(_drawn(drawer, category, category.held_out_templates, large=False,
                                section=OUT_OF_DISTRIBUTION))
        else:
            scalable = tuple(t for t in category.train_templates if t.scalable)
            items.append(_drawn(drawer, category, scalable, large=True, section=OUT_OF_DISTRIBUTION))
    return items


def _build() -> list[_Drawn]:
    drawer = _Drawer(random.Random(EVAL_SEED))
    drawn = _in_distribution(drawer) + _out_of_distribution(drawer)
    # Shuffled so any prefix is a fair sample (smoke runs evaluate the first few items only).
    drawer.rng.shuffle(drawn)
    for index, one in enumerate(drawn):
        one.item["id"] = f"{GENERATOR}-{index:04d}"
    return drawn


def eval_v1(count: int | None = None, seed: int | None = None) -> GeneratedSet:
    if count not in (None, COUNT):
        raise ValueError(f"count must be omitted for eval-v1, a fixed set of {COUNT} items (got {count!r}).")
    if seed not in (None, EVAL_SEED):
        raise ValueError(f"seed must be omitted for eval-v1, a fixed set (seed {EVAL_SEED}); got {seed!r}.")
    items = [{key: one.item[key] for key in ITEM_KEYS} for one in _build()]
    return GeneratedSet(GENERATOR, items, _manifest(items))


def eval_v1_reference_traces() -> dict[str, dict]:
    """A worked trace per eval item id, for auditing expected answers; never for training."""
    return {one.item["id"]: _reference_trace(one) for one in _build()}


def _reference_trace(one: _Drawn) -> dict:
    return {
        "trace_version": DEFAULT_TRACE_VERSION,
        "prompt": one.task.prompt,
        "final_answer": one.task.answer,
        "steps": [{"i": i, "type": kind, "content": text} for i, (kind, text) in enumerate(one.task.steps)],
        "meta": {"source": f"generator:{GENERATOR}", "eval_item_id": one.item["id"],
                 "category": one.item["category"], "section": one.item["section"],
                 "difficulty": one.item["difficulty"], "template": one.template.key,
                 "held_out_template": one.template.held_out, "large_numbers": one.large},
    }


def _manifest(items: list[dict]) -> dict:
    return set_manifest(
        name=NAME, version=VERSION, generator=GENERATOR, generator_version=GENERATOR_VERSION, kind="eval_items",
        seed=EVAL_SEED, items=items,
        categories=count_by(items, lambda item: item["category"]),
        sections=count_by(items, lambda item: item["section"]),
        difficulties=count_by(items, lambda item: item["difficulty"]),
        eval_ownership=OWNERSHIP_SCHEME,
    )
