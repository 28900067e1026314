"""Every arithmetic claim the generators write is true, and verification steps really verify."""

import operator
import re
from fractions import Fraction

import pytest

from training.generators import generate
from training.generators.eval_set import eval_v1_reference_traces
from training.judges import answer_exact, find_claims, format_ok, reasoning_checks
from training.render import render_completion, render_response

# The test's own reading of the simplest claims, independent of training.judges.
SIMPLE_CLAIM = re.compile(r"(?<![\d.])(?<![-+*/] )(\d+) ([-+*/]) (\d+) = (\d+(?:/\d+)?)(?![\d/])")
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": Fraction}


@pytest.fixture(scope="module")
def traces():
    return (generate("dev-reasoning-v1", count=3000, seed=21).items + generate("golden-v1").items
            + generate("high-card-duel", count=1000, seed=8).items)


@pytest.fixture(scope="module")
def reference_traces():
    return eval_v1_reference_traces()


def test_every_claim_in_every_generated_trace_is_true(traces, reference_traces):
    for trace in traces + list(reference_traces.values()):
        result = reasoning_checks(render_response(trace["steps"], trace["final_answer"]))
        assert result["ok"] and not result["false"], (trace["prompt"], result)


def test_simple_claims_hold_when_recomputed_independently(traces):
    recomputed = 0
    for trace in traces:
        for step in trace["steps"]:
            for left, op, right, result in SIMPLE_CLAIM.findall(step["content"]):
                assert OPERATORS[op](int(left), int(right)) == Fraction(result), step["content"]
                recomputed += 1
    assert recomputed > 2 * len(traces)


def test_word_problems_compute_real_intermediate_values(traces):
    word_problems = [t for t in traces if t["meta"]["task_type"] == "word_problem"]
    assert len(word_problems) > 2000
    for trace in word_problems:
        work = [step["content"] for step in trace["steps"] if step["type"] == "compute"]
        claims = [claim for content in work for claim in find_claims(content)]
        assert claims and all(c.holds for c in claims), trace
        computed = {number for content in work for number in re.findall(r"\d+", content)}
        assert trace["final_answer"] in computed, trace


def _numbers(text: str) -> set[Fraction]:
    return {Fraction(n) for n in re.findall(r"\d+", text)}


def test_verification_steps_undo_the_work_from_the_answer(traces):
    """The check starts from the final answer and lands on a value stated earlier in the trace."""
    checked = 0
    for trace in traces:
        if trace["meta"]["task_type"] != "word_problem":
            continue
        *work, check = trace["steps"]
        assert check["type"] == "verify", trace
        (claim,) = find_claims(check["content"])
        assert claim.holds, check
        numbers = re.findall(r"\d+", claim.text)
        assert numbers[0] == trace["final_answer"], (trace["final_answer"], claim.text)
        earlier = _numbers(trace["prompt"]) | {n for step in work for n in _numbers(step["content"])}
        assert Fraction(numbers[-1]) in earlier, claim.text
        checked += 1
    assert checked > 2000


def test_a_wrong_answer_would_fail_its_verification_step(traces):
    trace = next(t for t in traces if t["meta"]["task_type"] == "word_problem")
    check = trace["steps"][-1]["content"]
    answer = trace["final_answer"]
    tampered = check.replace(f"Check: {answer} ", f"Check: {int(answer) + 1} ", 1)
    assert tampered != check
    assert not find_claims(tampered)[0].holds


def test_every_rendered_completion_passes_format_and_answer_judges(traces, reference_traces):
    for trace in traces + list(reference_traces.values()):
        completion = render_completion(trace["steps"], trace["final_answer"])
        assert format_ok(completion), completion
        assert answer_exact(completion, trace["final_answer"]), completion


def test_eval_expected_answers_match_their_worked_solutions(reference_traces):
    items = {item["id"]: item for item in generate("eval-v1").items}
    assert set(items) == set(reference_traces)
    for item_id, trace in reference_traces.items():
        assert trace["prompt"] == items[item_id]["prompt"]
        assert trace["final_answer"] == items[item_id]["expected_answer"]
