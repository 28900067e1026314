"""Golden verdicts of the llm_judge at version 1: the mock's verdict for each combination of the
deterministic judges, how a service's reply is parsed, and the rubric it sends (by hash). Changing any
of them means a new LLM_JUDGE_VERSION: its scores are ranked only with scores of the same version."""

import pytest

from apps.evaluations import judges

MOCK_VERDICTS = [
    ({"correct": True, "format_ok": True, "reasoning_ok": True}, 1.0, "correct"),
    ({"correct": True, "format_ok": False}, 1.0, "correct"),  # reasoning_checks not in the set
    ({"correct": True, "format_ok": True, "reasoning_ok": False}, 0.5, "partially_correct"),
    ({"correct": True, "format_ok": False, "reasoning_ok": False}, 0.5, "partially_correct"),
    ({"correct": False, "format_ok": True, "reasoning_ok": True}, 0.5, "partially_correct"),
    ({"correct": False, "format_ok": False, "reasoning_ok": True}, 0.0, "incorrect"),
    ({"correct": False, "format_ok": False}, 0.0, "incorrect"),
]
REPLIES = [
    ('{"score": 0.8, "verdict": "correct", "reason": "ok"}', {"score": 0.8, "verdict": "correct", "reason": "ok"}),
    ('Sure: {"score": 1, "verdict": "correct"} done', {"score": 1.0, "verdict": "correct", "reason": ""}),
    ('{"score": 0}', {"score": 0.0, "verdict": "", "reason": ""}),
    ('{"score": 1.5}', None),
    ('{"score": true}', None),
    ('{"score": "0.5"}', None),
    ('{"verdict": "correct"}', None),
    ("{bad json}", None),
    ("no json at all", None),
    ("", None),
]


def test_the_golden_verdicts_are_of_version_1_and_its_rubric():
    assert judges.LLM_JUDGE_VERSION == "1", "a new llm_judge version needs new golden verdicts here"
    assert judges.RUBRIC_HASH == "5e618a2a72df1dd6b4cd342a7d1febc35c8aa25df6cbe86c8ac37bfdc188ed88", (
        "the rubric changed: bump LLM_JUDGE_VERSION")


@pytest.mark.parametrize(("scored", "score", "verdict"), MOCK_VERDICTS)
def test_the_mock_gives_its_golden_verdict(settings, scored, score, verdict):
    settings.REDIAI_MODE = "mock"
    result = judges.llm_judge({"prompt": "p", "expected_answer": "1"}, "any output", scored)
    assert (result["mode"], result["score"], result["verdict"]) == ("mock", score, verdict)


@pytest.mark.parametrize(("reply", "parsed"), REPLIES)
def test_a_reply_parses_to_its_golden_verdict(reply, parsed):
    assert judges.parse_verdict(reply) == parsed
