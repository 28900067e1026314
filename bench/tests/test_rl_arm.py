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


def test_a_variant_is_one_more_grpo_arm_with_its_settings_and_a_figure_against_the_base(start, tmp_path):
    from bench.bench_training import QUICK_PLAN
    from bench.rl_arm import grpo_arm, grpo_settings, variant_figure
    from training.generators import generate

    items = generate("eval-v1").items[:4]
    base = grpo_arm(tmp_path, start, 2, 8, grpo_settings(True, {}), QUICK_PLAN, items)
    variant = {"beta": 0, "reward": {"judges": {"answer_exact": 1}}}
    arm = grpo_arm(tmp_path, start, 2, 8, grpo_settings(True, variant), QUICK_PLAN, items,
                   out_name="grpo-variant-1")

    assert (tmp_path / "grpo").is_dir() and (tmp_path / "grpo-variant-1").is_dir()
    assert base["config"]["beta"] == 0.04 and set(base["config"]["reward"]["judges"]) == {
        "answer_exact", "format", "reasoning_checks"}
    assert arm["config"]["beta"] == 0 and set(arm["config"]["reward"]["judges"]) == {"answer_exact"}
    fig = variant_figure({"overrides": variant, **arm}, base)
    assert fig["name"] == ('GRPO lever beta=0, reward={"judges":{"answer_exact":1}}: '
                           "in-distribution answer accuracy")
    assert fig["value"] == round(100 * arm["sections"]["in_distribution"]["answer_accuracy"], 4)
    assert fig["comparison"]["value"] == round(100 * base["sections"]["in_distribution"]["answer_accuracy"], 4)
    assert f"{arm['steps']} steps (base {base['steps']})" in fig["note"]


@pytest.mark.parametrize(("variant", "message"), [
    ('{"group_size": 1}', "group_size"),
    ('{"reward": {"judges": {"no_such_judge": 1}}}', "no_such_judge"),
    ('{"temprature": 1.0}', "temprature"),
])
def test_a_bad_variant_stops_the_bench_before_anything_trains(variant, message, tmp_path):
    from bench.bench_training import main

    with pytest.raises(SystemExit, match=message):
        main(["--quick", "--no-speed", "--keep-runs", str(tmp_path), "--grpo-variant", variant])
    assert not any(tmp_path.iterdir())  # nothing trained


def test_a_variant_must_be_a_json_object(capsys):
    from bench.bench_training import main

    with pytest.raises(SystemExit):
        main(["--quick", "--grpo-variant", "[1]"])
    assert "expected a JSON object" in capsys.readouterr().err
