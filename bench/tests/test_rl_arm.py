"""The RL arm's prompt selection (`--rl-select`) on a real tiny checkpoint: it keeps exactly the prompts the
start answered right in some but not all samples (its samples are seeded: an evaluation with the same seeds
finds the same ones) and says how the rest split."""

import pytest

from bench.rl_arm import _selection_note, select_by_pass_rate
from training.evaluate import evaluate
from training.grpo.config import GRPOConfig
from training.tests.engine_helpers import arithmetic_trace, train_addition_start


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    return train_addition_start(tmp_path_factory.mktemp("rl-select"))


def test_selection_keeps_the_prompts_with_mixed_answers_and_accounts_for_the_rest(start):
    prompts = [{"prompt": t["prompt"], "expected_answer": t["final_answer"]}
               for t in (arithmetic_trace(a, b) for a in range(3) for b in range(3))]
    config = GRPOConfig.from_dict({"max_new_tokens": 80, "temperature": 0.7})

    chosen, selection = select_by_pass_rate(start, prompts, 8, 4, config)

    runs = [evaluate(start, prompts[:8], max_new_tokens=80, temperature=0.7, seed=seed, batch_size=64)["predictions"]
            for seed in range(4)]
    per_prompt = [sum(run[index]["correct"] for run in runs) for index in range(8)]
    mixed = [prompt for prompt, hit in zip(prompts[:8], per_prompt, strict=True) if 0 < hit < 4]
    # The same seeded samples as the selection's: this start gets some of them right some of the time.
    assert mixed and chosen == mixed
    assert (selection["candidates"], selection["k"], selection["kept"]) == (8, 4, len(mixed))
    assert selection["always_right"] == per_prompt.count(4) and selection["never_right"] == per_prompt.count(0)
    assert f"{len(mixed)} of 8 prompts" in _selection_note(selection) and _selection_note(None) == ""


def test_with_no_mixed_prompt_grpo_keeps_the_whole_pool(start):
    prompts = [{"prompt": "What is 1 + 1?", "expected_answer": "no sample can say this"}] * 2
    chosen, selection = select_by_pass_rate(start, prompts, 2, 2, GRPOConfig.from_dict({"max_new_tokens": 80}))
    assert chosen == prompts and (selection["kept"], selection["never_right"]) == (0, 2)
