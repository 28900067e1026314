"""eval-v1: size, shape, sections, and no prompt shared with any training generator."""

import random
import re
from collections import Counter

import pytest

from training.generators import TRAINING_GENERATORS, generate, is_eval_owned, vocab
from training.generators.dev_reasoning import CATEGORIES
from training.generators.eval_set import eval_v1_reference_traces
from training.generators.golden import GOLDEN_ITEMS
from training.generators.high_card_duel import prompt_space

ITEM_KEYS = {"id", "prompt", "expected_answer", "category", "difficulty", "section"}


@pytest.fixture(scope="module")
def eval_items():
    return generate("eval-v1").items


def test_eval_v1_has_at_least_200_items_with_unique_ids_and_prompts(eval_items):
    assert len(eval_items) >= 200
    assert all(set(item) == ITEM_KEYS for item in eval_items)
    assert len({item["id"] for item in eval_items}) == len(eval_items)
    assert len({item["prompt"] for item in eval_items}) == len(eval_items)
    assert all(item["expected_answer"].strip() for item in eval_items)


def test_eval_v1_is_mostly_in_distribution_with_an_out_of_distribution_share(eval_items):
    sections = Counter(item["section"] for item in eval_items)
    assert set(sections) == {"in_distribution", "out_of_distribution"}
    assert sections["in_distribution"] >= 200 > sections["out_of_distribution"] >= 40
    in_distribution = [item for item in eval_items if item["section"] == "in_distribution"]
    assert {item["category"] for item in in_distribution} == set(CATEGORIES)
    assert all(item["difficulty"] in {"easy", "medium"} for item in in_distribution)
    assert all(len(item["prompt"]) <= 150 for item in in_distribution)
    out = [item for item in eval_items if item["section"] == "out_of_distribution"]
    assert {item["difficulty"] for item in out} == {"hard"}
    assert {item["category"] for item in out} == set(CATEGORIES)


def test_out_of_distribution_items_use_held_out_wording_or_large_numbers():
    references = eval_v1_reference_traces().values()
    out = [t["meta"] for t in references if t["meta"]["section"] == "out_of_distribution"]
    assert all(meta["held_out_template"] != meta["large_numbers"] for meta in out)
    assert sum(meta["held_out_template"] for meta in out) >= len(out) // 2 - 1
    inside = [t["meta"] for t in references if t["meta"]["section"] == "in_distribution"]
    assert not any(meta["held_out_template"] or meta["large_numbers"] for meta in inside)


def _sizes(prompt: str) -> list[int]:
    """Every number in the prompt, then the length of every quoted word, in order."""
    return [int(n) for n in re.findall(r"\d+", prompt)] + [len(w) for w in re.findall(r"'([a-z]+)'", prompt)]


SCALABLE = [t for c in CATEGORIES.values() for t in c.train_templates if t.scalable]


@pytest.mark.parametrize("template", SCALABLE, ids=lambda t: t.key)
def test_large_numbers_exceed_what_training_ever_draws(template):
    rng = random.Random(5)
    small = [_sizes(template.build(rng, False).prompt) for _ in range(2000)]
    slots = max(len(sizes) for sizes in small)
    ceiling = [max(sizes[i] for sizes in small if len(sizes) > i) for i in range(slots)]
    for _ in range(200):
        large = _sizes(template.build(rng, True).prompt)
        assert any(value > limit for value, limit in zip(large, ceiling, strict=False)), (large, ceiling)


VOCABULARY = set(vocab.NAMES) | {word for pair in vocab.GOODS for word in pair} | {
    word
    for group in (vocab.SHAREABLES, vocab.VEHICLES, vocab.ACTIVITIES, vocab.LONG_THINGS, vocab.PLACES,
                  vocab.HEAVY_THINGS, vocab.AREAS, vocab.SQUARES, *vocab.MACHINES, *vocab.ORDER_RELATIONS)
    for phrase in group
    for word in phrase.split()}


def _skeleton(prompt: str) -> str:
    """The wording with numbers, quoted strings and vocabulary words blanked out."""
    prompt = re.sub(r"'[a-z]+'", "'S'", re.sub(r"\d+", "#", prompt))
    return " ".join("W" if word.strip(".,?'s") in VOCABULARY else word for word in prompt.split())


def test_held_out_wording_never_appears_in_training():
    training = {_skeleton(t["prompt"]) for t in generate("dev-reasoning-v1", count=20_000, seed=3).items}
    rng = random.Random(9)
    for category in CATEGORIES.values():
        for template in category.held_out_templates:
            for _ in range(20):
                assert _skeleton(template.build(rng, False).prompt) not in training, template.key
    # The blanking is coarse enough that a training template does match its own wording.
    assert _skeleton(CATEGORIES["shopping"].train_templates[0].build(rng, False).prompt) in training


def test_every_eval_prompt_is_eval_owned_and_no_training_generator_can_emit_it(eval_items):
    """Disjoint by construction: dev-reasoning skips eval-owned prompts; the other two are excluded."""
    assert all(is_eval_owned(item["prompt"]) for item in eval_items)
    prompts = {item["prompt"] for item in eval_items}
    assert not prompts & prompt_space()
    assert not prompts & {item[3] for item in GOLDEN_ITEMS}
    for seed in range(5):
        dev = generate("dev-reasoning-v1", count=2000, seed=seed)
        assert not any(is_eval_owned(t["prompt"]) for t in dev.items)
    assert not any(is_eval_owned(item[3]) for item in GOLDEN_ITEMS)


def test_no_eval_prompt_appears_in_large_training_runs(eval_items):
    eval_prompts = {item["prompt"] for item in eval_items}
    training_prompts = set()
    for name in TRAINING_GENERATORS:
        runs = [(20_000, 123), (20_000, 456)] if name == "dev-reasoning-v1" else [(None, None)]
        if name == "high-card-duel":
            runs = [(5_000, 0), (5_000, 1)]
        for count, seed in runs:
            training_prompts |= {t["prompt"] for t in generate(name, count=count, seed=seed).items}
    assert len(training_prompts) > 40_000
    assert not eval_prompts & training_prompts


def test_eval_ownership_is_a_stable_share_of_prompts():
    owned = [is_eval_owned(f"What is {a} + {b}?") for a in range(2, 60) for b in range(2, 60)]
    assert 0.09 < sum(owned) / len(owned) < 0.16
    assert is_eval_owned("What is 2 + 2?") == is_eval_owned("What is 2 + 2?")
