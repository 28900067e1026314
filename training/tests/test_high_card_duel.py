"""High Card Duel results and probabilities, recomputed here from first principles."""

from collections import Counter
from fractions import Fraction

import pytest

from training.generators import generate

# The test's own deck model: UNGAR codes, ace high, suits irrelevant.
ORDER = "23456789TJQKA"
SUIT_LETTERS = "SHDC"
FULL_DECK = [rank + suit for rank in ORDER for suit in SUIT_LETTERS]
SPOKEN = {"T": "10", "J": "jack", "Q": "queen", "K": "king", "A": "ace"}
SUIT_WORDS = {"S": "spades", "H": "hearts", "D": "diamonds", "C": "clubs"}


def strength(code: str) -> int:
    return ORDER.index(code[0])


def spoken(code: str) -> str:
    return f"{SPOKEN.get(code[0], code[0])} of {SUIT_WORDS[code[1]]}"


def expected_probability(code: str) -> Fraction:
    others = [card for card in FULL_DECK if card != code]
    return Fraction(sum(strength(card) < strength(code) for card in others), len(others))


@pytest.fixture(scope="module")
def episodes():
    return generate("high-card-duel", count=3000, seed=42).items


def test_each_episode_deals_two_different_real_cards(episodes):
    for trace in episodes:
        meta = trace["meta"]
        assert meta["my_card"] in FULL_DECK and meta["opponent_card"] in FULL_DECK
        assert meta["my_card"] != meta["opponent_card"]
        assert meta["game"] == "high_card_duel" and meta["seed"] == 42
    assert [t["meta"]["episode_index"] for t in episodes] == list(range(len(episodes)))
    assert {t["meta"]["my_card"] for t in episodes} == set(FULL_DECK)


def test_results_follow_ace_high_and_equal_ranks_tie(episodes):
    for trace in episodes:
        mine, theirs = strength(trace["meta"]["my_card"]), strength(trace["meta"]["opponent_card"])
        expected = "win" if mine > theirs else "loss" if mine < theirs else "tie"
        assert trace["meta"]["result"] == expected, trace["meta"]


def test_who_wins_answers_match_the_dealt_cards(episodes):
    answers = {"win": "me", "loss": "opponent", "tie": "tie"}
    who_wins = [t for t in episodes if t["meta"]["question"] == "who_wins"]
    assert len(who_wins) > 1000
    for trace in who_wins:
        assert trace["final_answer"] == answers[trace["meta"]["result"]]
        assert spoken(trace["meta"]["my_card"]) in trace["prompt"]
        assert spoken(trace["meta"]["opponent_card"]) in trace["prompt"]
    assert {t["final_answer"] for t in who_wins} == {"me", "opponent", "tie"}


def test_win_probabilities_are_exact_reduced_fractions_over_51_cards(episodes):
    probability = [t for t in episodes if t["meta"]["question"] == "win_probability"]
    assert len(probability) > 1000
    for trace in probability:
        expected = expected_probability(trace["meta"]["my_card"])
        assert Fraction(trace["final_answer"]) == expected
        assert trace["final_answer"] == str(expected)  # reduced, and "0" for a two
        assert spoken(trace["meta"]["my_card"]) in trace["prompt"]
        assert spoken(trace["meta"]["opponent_card"]) not in trace["prompt"]
    assert expected_probability("8S") == Fraction(8, 17)


def test_ties_happen_about_as_often_as_chance_says(episodes):
    results = Counter(t["meta"]["result"] for t in episodes)
    # P(tie) = 3/51 ≈ 5.9 %; with 3000 deals anything from 3 % to 9 % is comfortably inside chance.
    assert 0.03 < results["tie"] / len(episodes) < 0.09
    assert abs(results["win"] - results["loss"]) < 0.1 * len(episodes)
