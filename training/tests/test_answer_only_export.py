"""tunix_sft_answer_only: the show-your-work ablation renders the same traces without their work."""

from training.render import EXPORT_FORMATS, render_export_line
from training.tests.engine_helpers import arithmetic_trace


def test_answer_only_is_an_export_format():
    assert "tunix_sft_answer_only" in EXPORT_FORMATS


def test_answer_only_keeps_prompt_and_answer_and_empties_the_reasoning():
    trace = arithmetic_trace(12, 30)
    full = render_export_line("tunix_sft", trace, "t-1")
    bare = render_export_line("tunix_sft_answer_only", trace, "t-1")
    assert bare["prompt"] == full["prompt"] and bare["final_answer"] == full["final_answer"] == "42"
    assert bare["completion"] == "<reasoning></reasoning><answer>42</answer><end_of_turn>"
    assert bare["text"] == bare["prompt"] + bare["completion"]
    assert set(bare) == set(full)
