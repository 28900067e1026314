"""The deterministic judges: format, answer extraction and normalisation, arithmetic claims."""

import pytest

from training.judges import (
    FORMAT_RE,
    JUDGE_VERSIONS,
    answer_exact,
    check_claims,
    extract_answer,
    find_claims,
    format_ok,
    normalize_answer,
    reasoning_checks,
)

GOOD = "<reasoning>3 * 4 = 12\n12 + 7 = 19</reasoning><answer>19</answer>"


def test_judge_versions_name_the_three_judges():
    assert JUDGE_VERSIONS == {"answer_exact": "1", "format": "1", "reasoning_checks": "1"}


@pytest.mark.parametrize("output", [
    GOOD,
    GOOD + "<end_of_turn>",
    GOOD + "<end_of_turn>\n",
    GOOD + "\n  ",
    "\n<reasoning>one line</reasoning>\n<answer> yes </answer>",
    "<reasoning>\nStep 1\nStep 2\n</reasoning><answer>a b c</answer>",
])
def test_format_accepts_the_full_reasoning_then_answer_pattern(output):
    assert format_ok(output)
    assert FORMAT_RE.fullmatch(output)


@pytest.mark.parametrize("output", [
    "",
    "19",
    "<answer>19</answer>",
    "<reasoning>3 + 4 = 7</reasoning>",
    "Sure! " + GOOD,
    GOOD + " and some chatter",
    GOOD + "<end_of_turn><end_of_turn>",
    "<answer>19</answer><reasoning>3 + 4 = 7</reasoning>",
    "<reasoning>   </reasoning><answer>19</answer>",
    "<reasoning>x</reasoning><answer>  </answer>",
    "<reasoning>a <answer>1</answer></reasoning><answer>19</answer>",
    "<reasoning>x</reasoning><answer>19</answer><answer>20</answer>",
    "<reasoning>x</reasoning><answer>19",
])
def test_format_rejects_anything_else(output):
    assert not format_ok(output)


def test_extract_answer_takes_the_last_closed_answer_block_stripped():
    assert extract_answer(GOOD) == "19"
    assert extract_answer("<answer>1</answer> then <answer>\n 2 \n</answer>") == "2"
    assert extract_answer("<answer>7</answer><answer>8") == "7"


def test_extract_answer_is_none_without_a_closed_answer_block():
    assert extract_answer("the answer is 19") is None
    assert extract_answer("<reasoning>x</reasoning><answer>19") is None


@pytest.mark.parametrize("raw, normalised", [
    ("150", "150"),
    ("  150 ", "150"),
    ("1,000", "1000"),
    ("12,345,678", "12345678"),
    ("3.50", "3.5"),
    ("4.0", "4"),
    ("+4", "4"),
    ("-0", "0"),
    ("007", "7"),
    (".5", "0.5"),
    ("\u22123", "-3"),
    ("16/34", "8/17"),
    ("8/17", "8/17"),
    ("4/2", "2"),
    ("0/51", "0"),
    ("1/0", "1/0"),
    ("0.5", "0.5"),
    ("1/2", "1/2"),
    ("Yes", "yes"),
    ("NO.", "no"),
    ("'tserof'", "tserof"),
    ('"Ana"', "ana"),
    ("Big   Red\nDog", "big red dog"),
    ("150 km", "150 km"),
    ("1,00", "1,00"),
])
def test_normalize_answer_table(raw, normalised):
    assert normalize_answer(raw) == normalised


@pytest.mark.parametrize("output, expected, correct", [
    ("<reasoning>x</reasoning><answer>1,000</answer>", "1000", True),
    ("<reasoning>x</reasoning><answer> YES </answer>", "yes", True),
    ("<reasoning>x</reasoning><answer>16/34</answer>", "8/17", True),
    ("<reasoning>x</reasoning><answer>0.47</answer>", "8/17", False),
    ("<reasoning>x</reasoning><answer>150 km</answer>", "150", False),
    ("<reasoning>x</reasoning><answer>151</answer>", "150", False),
    ("no tags, just 150", "150", False),
])
def test_answer_exact_compares_normalised_extracted_answers(output, expected, correct):
    assert answer_exact(output, expected) is correct


def test_reasoning_checks_counts_true_claims():
    result = reasoning_checks(GOOD)
    assert result == {"claims": 2, "true": 2, "false": [], "ok": True, "has_reasoning": True}


def test_reasoning_checks_catches_a_false_claim():
    output = "<reasoning>3 * 4 = 12\n12 + 7 = 20\nCheck: 20 - 7 = 12</reasoning><answer>20</answer>"
    result = reasoning_checks(output)
    assert result["claims"] == 3
    assert result["true"] == 1
    assert result["false"] == ["12 + 7 = 20", "20 - 7 = 12"]
    assert result["ok"] is False


def test_reasoning_checks_only_reads_the_reasoning_block():
    result = reasoning_checks("1 + 1 = 3 <reasoning>2 + 2 = 4</reasoning><answer>5 + 5 = 11</answer>")
    assert (result["claims"], result["ok"]) == (1, True)


def test_reasoning_checks_without_a_reasoning_block_is_not_ok():
    assert reasoning_checks("<answer>4</answer>") == {
        "claims": 0, "true": 0, "false": [], "ok": False, "has_reasoning": False}


def test_reasoning_without_arithmetic_is_ok():
    result = reasoning_checks("<reasoning>Ava is taller than Ben.</reasoning><answer>Ava</answer>")
    assert (result["claims"], result["ok"]) == (0, True)


@pytest.mark.parametrize("text, holds", [
    ("Check: 9 * 4 + 2 = 38", True),  # precedence: multiplication first
    ("2 + 3 * 4 = 20", False),
    ("5 - -3 = 8", True),
    ("12-3=9", True),
    ("3 \u00d7 4 = 12", True),
    ("12 \u00f7 4 = 3", True),
    ("7 \u2212 2 = 5", True),
    ("3 x 4 = 13", False),
    ("1,000 + 5 = 1,005", True),
    ("48 / 51 = 16/17", True),
    ("2 + 3 = 1 + 4 = 5", True),  # a chain: every side has the same value
    ("2 + 3 = 5 + 1 = 6", False),  # a running total written as a chain is literally false
    ("10 / 3 = 3.33", True),  # a decimal result is read as rounded to its places
    ("2 / 3 = 0.6", False),  # 0.67 rounds to 0.7, not 0.6
    ("0.1 + 0.2 = 0.3", True),  # exact decimal arithmetic, no float error
    ("47 / 5 = 9 remainder 2", True),
    ("47 / 5 = 9 r 3", False),
    ("8 / 0 = 1", False),
])
def test_claims_are_recomputed_exactly(text, holds):
    claims = find_claims(text)
    assert len(claims) == 1, claims
    assert claims[0].holds is holds


@pytest.mark.parametrize("text", [
    "19 = 19",
    "v2 + 3 = 5x",
    "Letters: g-a-r-d-e-n",
    "'s' is at positions 3, 4, 6 and 7",
    "Probability: 20/51",
    "From 2024-01-05 to 2024-02-01",
    "3 < 9 is true",
])
def test_text_without_an_arithmetic_claim_has_no_claims(text):
    assert check_claims(text)["claims"] == 0


def test_a_claim_at_the_end_of_a_sentence_is_still_read():
    assert check_claims("So 3 + 4 = 7. Then 7 * 2 = 15.") == {
        "claims": 2, "true": 1, "false": ["7 * 2 = 15"], "ok": False}


def test_judges_are_deterministic():
    outputs = [reasoning_checks(GOOD) for _ in range(3)] + [reasoning_checks(GOOD.replace("19", "18"))]
    assert outputs[0] == outputs[1] == outputs[2] != outputs[3]
