"""high-card-duel: UNGAR-compatible High Card Duel episodes as reasoning traces.

Each episode shuffles a 52-card deck and deals one card to me and one to the opponent. Ranks run
2..10, J, Q, K, A (ace high); equal ranks tie and suits never matter. The trace answers one
checkable question about the deal:

- `who_wins`: answer `me`, `opponent` or `tie`;
- `win_probability`: my chance of beating a random one of the other 51 cards, as a reduced
  fraction (`8/17`; `0` for a two).

Meta follows UNGAR's episode fields: `game`, `episode_index`, `my_card`, `opponent_card` (codes
like `QS`, `TH`), `result` (`win`/`loss`/`tie` from my side) and `seed`.
"""

from __future__ import annotations

import random
from fractions import Fraction
from functools import lru_cache

from training.generators.base import MAX_SEED, GeneratedSet, check_int, count_by, set_manifest
from training.trace_schema import DEFAULT_TRACE_VERSION

NAME, VERSION = "high-card-duel", "v1"
GENERATOR = NAME
GENERATOR_VERSION = "1"
GAME = "high_card_duel"
DEFAULT_COUNT, DEFAULT_SEED, MAX_COUNT = 100, 0, 100_000
QUESTIONS = ("who_wins", "win_probability")

RANKS = ("2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K", "A")
RANK_VALUES = {rank: value for value, rank in enumerate(RANKS, start=2)}
_RANK_WORDS = {"J": "jack", "Q": "queen", "K": "king", "A": "ace"}
SUITS = {"S": "spades", "H": "hearts", "D": "diamonds", "C": "clubs"}
DECK = tuple((rank, suit) for suit in SUITS for rank in RANKS)

_WHO_WINS_PROMPTS = (
    "High Card Duel: my card is the {mine} and the opponent's card is the {theirs}. "
    "Aces are high and equal ranks tie. Who wins: me, opponent or tie?",
    "High Card Duel. Me: {mine}. Opponent: {theirs}. Ace high, equal ranks tie. "
    "Who wins: me, opponent or tie?",
)
_PROBABILITY_PROMPTS = (
    "High Card Duel: my card is the {mine} and the opponent gets a random one of the other 51 cards. "
    "Aces are high and equal ranks tie. What is my probability of winning, as a reduced fraction?",
    "High Card Duel. Me: {mine}. Opponent: a random one of the other 51 cards. Ace high, equal ranks "
    "tie. What is my chance of winning, as a reduced fraction?",
)


def card_code(card: tuple[str, str]) -> str:
    """UNGAR's short form: rank then suit letter, `T` for ten (`TH`, `QS`, `2D`)."""
    rank, suit = card
    return ("T" if rank == "10" else rank) + suit


def card_name(card: tuple[str, str]) -> str:
    rank, suit = card
    return f"{_RANK_WORDS.get(rank, rank)} of {SUITS[suit]}"


def duel_result(mine: tuple[str, str], theirs: tuple[str, str]) -> str:
    """UNGAR's result from my side: win, loss or tie."""
    difference = RANK_VALUES[mine[0]] - RANK_VALUES[theirs[0]]
    return "win" if difference > 0 else "loss" if difference < 0 else "tie"


def win_probability(mine: tuple[str, str]) -> Fraction:
    """Exact chance that a uniformly random other card has a lower rank (4 suits per rank)."""
    return Fraction((RANK_VALUES[mine[0]] - 2) * 4, len(DECK) - 1)


def format_fraction(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _who_wins_steps(mine: tuple[str, str], theirs: tuple[str, str]) -> tuple[list[tuple[str, str]], str]:
    mv, ov = RANK_VALUES[mine[0]], RANK_VALUES[theirs[0]]
    steps = [("read", f"My card: {card_name(mine)}, rank value {mv}"),
             ("read", f"Opponent's card: {card_name(theirs)}, rank value {ov}")]
    if mv > ov:
        steps.append(("compute", f"{mv} - {ov} = {mv - ov}, so the winner is me"))
        return steps, "me"
    if mv < ov:
        steps.append(("compute", f"{ov} - {mv} = {ov - mv}, so the winner is opponent"))
        return steps, "opponent"
    steps.append(("compute", f"{mv} - {ov} = 0, so it is a tie"))
    return steps, "tie"


def _probability_steps(mine: tuple[str, str]) -> tuple[list[tuple[str, str]], str]:
    value = RANK_VALUES[mine[0]]
    lower_ranks = value - 2
    winners = lower_ranks * 4
    answer = format_fraction(win_probability(mine))
    steps = [("read", f"My card: {card_name(mine)}, rank value {value}"),
             ("compute", f"Lower ranks: {value} - 2 = {lower_ranks}"),
             ("compute", f"Winning cards: {lower_ranks} * 4 = {winners}"),
             ("compute", "Other cards: 52 - 1 = 51"),
             ("conclude", f"Probability: {winners} / 51 = {answer}")]
    return steps, answer


def episode_trace(episode_index: int, seed: int, rng: random.Random) -> dict:
    deck = list(DECK)
    rng.shuffle(deck)
    mine, theirs = deck[0], deck[1]
    question = rng.choice(QUESTIONS)
    phrasing = rng.randrange(2)
    if question == "who_wins":
        prompt = _WHO_WINS_PROMPTS[phrasing].format(mine=card_name(mine), theirs=card_name(theirs))
        steps, answer = _who_wins_steps(mine, theirs)
    else:
        prompt = _PROBABILITY_PROMPTS[phrasing].format(mine=card_name(mine))
        steps, answer = _probability_steps(mine)
    return {
        "trace_version": DEFAULT_TRACE_VERSION,
        "prompt": prompt,
        "final_answer": answer,
        "steps": [{"i": i, "type": kind, "content": text} for i, (kind, text) in enumerate(steps)],
        "meta": _episode_meta(episode_index, seed, mine, theirs, question),
    }


def _episode_meta(episode_index: int, seed: int, mine: tuple, theirs: tuple, question: str) -> dict:
    return {
        "source": f"generator:{GENERATOR}",
        "generator": GENERATOR,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "category": GAME,
        "task_type": "game",
        "template": f"{GAME}.{question}",
        "difficulty": "easy" if question == "who_wins" else "medium",
        "answer_type": "choice" if question == "who_wins" else "fraction",
        "tags": ["game", GAME, question],
        "game": GAME,
        "question": question,
        "episode_index": episode_index,
        "my_card": card_code(mine),
        "opponent_card": card_code(theirs),
        "result": duel_result(mine, theirs),
    }


def high_card_duel(count: int | None = None, seed: int | None = None) -> GeneratedSet:
    count = check_int("count", DEFAULT_COUNT if count is None else count, 1, MAX_COUNT)
    seed = check_int("seed", DEFAULT_SEED if seed is None else seed, 0, MAX_SEED)
    rng = random.Random(seed)
    traces = [episode_trace(index, seed, rng) for index in range(count)]
    manifest = set_manifest(
        name=NAME, version=VERSION, generator=GENERATOR, generator_version=GENERATOR_VERSION, kind="traces",
        seed=seed, items=traces,
        game=GAME,
        categories={GAME: count},
        questions=count_by(traces, lambda t: t["meta"]["question"]),
        results=count_by(traces, lambda t: t["meta"]["result"]),
    )
    return GeneratedSet(GENERATOR, traces, manifest)


@lru_cache(maxsize=1)
def prompt_space() -> frozenset[str]:
    """Every prompt this generator can emit for any seed (eval sets stay clear of all of them)."""
    prompts = {
        template.format(mine=card_name(mine), theirs=card_name(theirs))
        for template in _WHO_WINS_PROMPTS for mine in DECK for theirs in DECK if mine != theirs
    }
    prompts |= {template.format(mine=card_name(mine)) for template in _PROBABILITY_PROMPTS for mine in DECK}
    return frozenset(prompts)
