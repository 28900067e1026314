"""dev-reasoning-v2: traces a small model can follow, with v1 and eval-v1 left exactly as they were."""

import random
import re

import pytest

from training.generators import generate, is_eval_owned
from training.generators.dev_reasoning import CATEGORIES as V1_CATEGORIES
from training.generators.dev_reasoning_v2 import WIDE_SHARE
from training.generators.scratchpad import add_columns, compare_digits, multiply_steps, subtract_columns
from training.judges import answer_exact, format_ok, reasoning_checks
from training.render import render_completion, render_response
from training.tests.test_eval_set import _skeleton

# generate("dev-reasoning-v1") before v2 existed; v1 must keep these bytes.
V1_ITEMS_SHA256 = "98f3191b4dd1aecfd096f875c3a97a8b1582d552506c49bc854475a8e03d5050"


@pytest.fixture(scope="module")
def v2():
    return generate("dev-reasoning-v2", count=6000, seed=2)


def test_dev_reasoning_v1_keeps_its_bytes():
    assert generate("dev-reasoning-v1").manifest["items_sha256"] == V1_ITEMS_SHA256


def test_v2_is_a_new_version_with_the_same_categories_and_mix(v2):
    manifest = v2.manifest
    assert (manifest["name"], manifest["version"], manifest["generator"]) == ("dev-reasoning", "v2", "dev-reasoning-v2")
    assert set(manifest["categories"]) == set(V1_CATEGORIES)
    assert manifest["task_types"] == {"word_problem": 4200, "synthetic": 1800}
    assert manifest["unique_prompts"] == 6000
    assert abs(manifest["number_ranges"]["wide"] / 6000 - WIDE_SHARE * 0.95) < 0.05  # logic_order/and_or stay small


def test_every_claim_in_every_v2_trace_is_true_and_every_answer_is_judged_correct(v2):
    for trace in v2.items:
        response = render_response(trace["steps"], trace["final_answer"])
        checks = reasoning_checks(response)
        assert checks["ok"], (trace["prompt"], checks["false"])
        completion = render_completion(trace["steps"], trace["final_answer"])
        assert format_ok(completion) and answer_exact(completion, trace["final_answer"]), completion


def test_no_v2_prompt_is_eval_owned_or_an_eval_prompt(v2):
    assert not any(is_eval_owned(trace["prompt"]) for trace in v2.items)
    assert not {item["prompt"] for item in generate("eval-v1").items} & {t["prompt"] for t in v2.items}


def test_v2_never_uses_held_out_wording_but_keeps_every_v1_template(v2):
    v1_templates = {t.key for category in V1_CATEGORIES.values() for t in category.train_templates}
    assert {trace["meta"]["template"] for trace in v2.items} == v1_templates
    training = {_skeleton(trace["prompt"]) for trace in v2.items}
    rng = random.Random(9)
    for category in V1_CATEGORIES.values():
        for template in category.held_out_templates:
            for _ in range(20):
                assert _skeleton(template.build(rng, False).prompt) not in training, template.key


def _lines(trace: dict, prefix: str) -> str:
    return next(step["content"] for step in trace["steps"] if step["content"].startswith(prefix))


def test_string_traces_spell_the_word_with_positions_then_work_on_that_list(v2):
    strings = [t for t in v2.items if t["meta"]["category"] == "string"]
    assert len(strings) > 400
    for trace in strings:
        word = re.findall(r"'([a-z]+)'", trace["prompt"])[-1]
        spelled = _lines(trace, "Letters: ").removeprefix("Letters: ").split(", ")
        assert spelled == [f"{position} {letter}" for position, letter in enumerate(word, start=1)]
        if trace["meta"]["template"] == "string.reverse":
            assert _lines(trace, "Backwards: ").removeprefix("Backwards: ").split(", ") == spelled[::-1]
        if trace["meta"]["template"] == "string.count_letter":
            tally = _lines(trace, "Running count").split(": ", 1)[1].split(", ")
            assert [item.split()[0] for item in tally] == list(word)
            assert tally[-1].split()[1] == trace["final_answer"]


def test_column_work_ends_on_the_result_it_states():
    for a, b in [(478, 356), (978, 356), (47, 8), (560, 40), (9, 9999)]:
        assert add_columns(a, b)[-1].endswith(f"so far {a + b}")
    for a, b in [(80, 57), (1000, 997), (22, 9), (5000, 1)]:
        assert int(subtract_columns(a, b)[-1].split("so far ")[1].split()[0]) == a - b
    assert multiply_steps(70, 8) == ["7 * 8 = 56"]
    assert multiply_steps(7, 8) == [] and multiply_steps(100, 9) == []
    partial = multiply_steps(47, 36)
    assert partial[0] == "47 * 36 = 47 * 6 + 47 * 30" and partial[-1] == "282 + 1410 = 1692"


def test_numbers_are_compared_digit_by_digit_from_the_left():
    lines, larger = compare_digits(478, 456)
    assert larger == 478 and lines[-1] == "tens: 7 is more than 5, so 478 is larger"
    assert compare_digits(9, 38) == (["9 has 1 digit and 38 has 2 digits", "more digits, so 38 is larger"], 38)


def test_wide_items_cover_the_long_numbers_eval_v1_keeps_out_of_distribution(v2):
    wide = [t for t in v2.items if t["meta"]["number_range"] == "wide" and t["meta"]["category"] == "arithmetic"]
    longest = max(int(n) for t in wide for n in re.findall(r"\d+", t["prompt"]))
    assert longest >= 1000
    assert any("carry" in step["content"] for t in wide for step in t["steps"])
