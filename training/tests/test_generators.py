"""Generators: determinism, validity, meta, the 70/30 mix, bare answers and argument checks."""

import random
import re

import pytest

from training.generators import GENERATORS, generate
from training.generators.dev_reasoning import REASONING_CATEGORIES, SYNTHETIC_CATEGORIES
from training.generators.vocab import NAMES
from training.judges import normalize_answer
from training.render import render_completion, render_tunix_sft
from training.trace_schema import canonical_json, clean_trace, trace_errors

TRACE_GENERATORS = ("dev-reasoning-v1", "golden-v1", "high-card-duel")
MANIFEST_KEYS = ("name", "version", "generator", "generator_version", "seed", "count", "categories")
META_KEYS = {"source", "category", "task_type", "tags", "seed", "generator", "difficulty"}


@pytest.fixture(scope="module")
def dev():
    return generate("dev-reasoning-v1")


@pytest.fixture(scope="module")
def all_traces(dev):
    return dev.items + generate("golden-v1").items + generate("high-card-duel", count=500, seed=3).items


@pytest.mark.parametrize("name, kwargs", [
    ("dev-reasoning-v1", {"count": 400, "seed": 11}),
    ("golden-v1", {}),
    ("high-card-duel", {"count": 300, "seed": 5}),
    ("eval-v1", {}),
])
def test_the_same_arguments_give_the_same_bytes(name, kwargs):
    first, second = generate(name, **kwargs), generate(name, **kwargs)
    assert canonical_json(first.items) == canonical_json(second.items)
    assert first.manifest == second.manifest


@pytest.mark.parametrize("name", ["dev-reasoning-v1", "high-card-duel"])
def test_a_different_seed_gives_different_items(name):
    one = [t["prompt"] for t in generate(name, count=300, seed=1).items]
    two = [t["prompt"] for t in generate(name, count=300, seed=2).items]
    assert one != two
    assert len(set(one) & set(two)) < 150


def test_generators_never_touch_the_global_random_state():
    random.seed(1234)
    state = random.getstate()
    outputs = [canonical_json(generate(name).items) for name in GENERATORS]
    assert random.getstate() == state
    random.seed(99)
    assert outputs == [canonical_json(generate(name).items) for name in GENERATORS]


def test_every_generated_trace_validates(all_traces):
    for trace in all_traces:
        assert trace_errors(trace) == {}, trace
        assert clean_trace(trace) == trace


def test_trace_meta_uses_the_conventional_keys(all_traces):
    for trace in all_traces:
        meta = trace["meta"]
        assert META_KEYS <= set(meta), trace
        assert meta["source"] == f"generator:{meta['generator']}"
        assert isinstance(meta["tags"], list) and meta["tags"]
        assert meta["difficulty"] in {"easy", "medium"}


def test_dev_reasoning_keeps_the_70_30_mix_and_every_category(dev):
    manifest = dev.manifest
    assert manifest["task_types"] == {"word_problem": 1400, "synthetic": 600}
    assert manifest["categories"] == {
        **{c.name: 175 for c in REASONING_CATEGORIES}, **{c.name: 150 for c in SYNTHETIC_CATEGORIES}}
    assert manifest["count"] == len(dev.items) == 2000
    small = generate("dev-reasoning-v1", count=7, seed=3).manifest
    assert small["task_types"] == {"word_problem": 5, "synthetic": 2}


def test_manifests_describe_their_items():
    for name in GENERATORS:
        generated = generate(name)
        manifest = generated.manifest
        assert generated.name == manifest["generator"] == name
        assert set(MANIFEST_KEYS) <= set(manifest)
        assert manifest["count"] == len(generated.items) == sum(manifest["categories"].values())


def test_dev_reasoning_prompts_are_unique_in_a_large_run():
    dev = generate("dev-reasoning-v1", count=20_000, seed=7)
    assert dev.manifest["unique_prompts"] == len({t["prompt"] for t in dev.items}) == 20_000


def test_every_template_is_used_and_answers_vary(dev):
    templates = {t["meta"]["template"] for t in dev.items}
    expected = {tpl.key for c in (*REASONING_CATEGORIES, *SYNTHETIC_CATEGORIES) for tpl in c.train_templates}
    assert templates == expected
    integers = {t["final_answer"] for t in dev.items if t["meta"]["answer_type"] == "integer"}
    assert len(integers) > 300
    yes_no = [t["final_answer"] for t in dev.items if t["meta"]["answer_type"] == "yes_no"]
    assert 0.35 < yes_no.count("yes") / len(yes_no) < 0.65


def _is_bare(answer: str, answer_type: str) -> bool:
    if answer_type == "integer":
        return re.fullmatch(r"0|[1-9]\d*", answer) is not None
    if answer_type == "fraction":
        return re.fullmatch(r"0|[1-9]\d*/[1-9]\d*", answer) is not None
    if answer_type == "yes_no":
        return answer in {"yes", "no"}
    if answer_type == "choice":
        return answer in {"me", "opponent", "tie"}
    if answer_type == "name":
        return answer in NAMES or answer in {"Ada", "Bea", "Cy"}
    return answer_type == "text" and re.fullmatch(r"[a-z]+", answer) is not None


def test_answers_are_bare_normalised_values(all_traces):
    for trace in all_traces:
        answer, answer_type = trace["final_answer"], trace["meta"]["answer_type"]
        assert _is_bare(answer, answer_type), (answer, answer_type, trace["prompt"])
        if answer_type != "name":  # names keep their capital; the judge folds case on both sides
            assert normalize_answer(answer) == answer


def test_in_distribution_traces_fit_a_small_byte_level_model(dev):
    for trace in dev.items:
        assert len(trace["prompt"]) <= 150, trace["prompt"]
        assert len(render_completion(trace["steps"], trace["final_answer"])) <= 200, trace
        assert len(render_tunix_sft(trace, "id")["text"].encode("utf-8")) <= 384, trace


def test_golden_v1_is_small_hand_written_and_covers_every_dev_category():
    golden = generate("golden-v1")
    assert 20 <= len(golden.items) <= 40
    categories = {t["meta"]["category"] for t in golden.items}
    assert {c.name for c in (*REASONING_CATEGORIES, *SYNTHETIC_CATEGORIES)} <= categories
    assert all(t["meta"]["hand_checked"] for t in golden.items)
    assert len(generate("golden-v1", count=5).items) == 5


@pytest.mark.parametrize("name, kwargs, named", [
    ("no-such-set", {}, "no-such-set"),
    ("dev-reasoning-v1", {"count": 0}, "count"),
    ("dev-reasoning-v1", {"count": "10"}, "count"),
    ("dev-reasoning-v1", {"count": True}, "count"),
    ("dev-reasoning-v1", {"count": 100_001}, "count"),
    ("dev-reasoning-v1", {"seed": -1}, "seed"),
    ("dev-reasoning-v1", {"seed": 1.5}, "seed"),
    ("high-card-duel", {"count": -3}, "count"),
    ("golden-v1", {"seed": 1}, "seed"),
    ("golden-v1", {"count": 99}, "count"),
    ("eval-v1", {"seed": 1}, "seed"),
    ("eval-v1", {"count": 10}, "count"),
])
def test_generate_rejects_bad_arguments_by_name(name, kwargs, named):
    with pytest.raises(ValueError, match=named):
        generate(name, **kwargs)
