"""golden-v1: a small hand-written, hand-checked set across every dev category (plus the duel).

The wording is deliberately a little different from the templates, so it also shows whether a
model learned the tasks rather than the template sentences. Each item was worked by hand; the
tests re-check every arithmetic claim, every answer and the eval-ownership rule.
"""

from __future__ import annotations

from functools import lru_cache

from training.generators.base import GeneratedSet, check_int, count_by, is_eval_owned, set_manifest
from training.trace_schema import DEFAULT_TRACE_VERSION

NAME, VERSION = "golden", "v1"
GENERATOR = f"{NAME}-{VERSION}"
GENERATOR_VERSION = "1"

_TASK_TYPES = {"arithmetic": "synthetic", "comparison": "synthetic", "string": "synthetic",
               "logic": "synthetic", "high_card_duel": "game"}

# One item per block: "category difficulty answer_type", the prompt on one or more "Q:" lines
# (joined with spaces), one "type: content" line per step, and the bare answer on "A:".
GOLDEN_TEXT = """
shopping medium integer
Q: Lina buys 4 notebooks at 3 dollars each and a ruler for 2 dollars. How many dollars does she
Q: spend in all?
compute: Notebooks: 4 * 3 = 12
compute: Total: 12 + 2 = 14
verify: Check: 14 - 2 = 12
A: 14

shopping easy integer
Q: A bakery sells muffins at 5 dollars each. How many dollars do 7 muffins cost?
compute: Cost: 7 * 5 = 35
verify: Check: 35 / 7 = 5
A: 35

shopping medium integer
Q: Tom buys 2 shirts at 9 dollars each and 3 caps at 6 dollars each. What does he pay, in dollars?
compute: Shirts: 2 * 9 = 18
compute: Caps: 3 * 6 = 18
compute: Total: 18 + 18 = 36
verify: Check: 36 - 18 = 18
A: 36

change easy integer
Q: Mira pays for a 13 dollar lunch with a 20 dollar note. How many dollars of change should she
Q: receive?
compute: Change: 20 - 13 = 7
verify: Check: 7 + 13 = 20
A: 7

change medium integer
Q: Owen buys 3 comics at 4 dollars each and pays with a 50 dollar note. How much change, in
Q: dollars, does he get?
compute: Cost: 3 * 4 = 12
compute: Change: 50 - 12 = 38
verify: Check: 38 + 12 = 50
A: 38

change medium integer
Q: Nell starts with 45 dollars, spends 12 on a book and 9 on a snack. How many dollars remain?
compute: Spent: 12 + 9 = 21
compute: Left: 45 - 21 = 24
verify: Check: 24 + 21 = 45
A: 24

distance easy integer
Q: A ferry sails at 30 km per hour for 4 hours. How far does it go in km?
compute: Distance: 30 * 4 = 120
verify: Check: 120 / 4 = 30
A: 120

distance easy integer
Q: A cyclist covers 60 km in 3 hours at an even pace. What is her speed in km per hour?
compute: Speed: 60 / 3 = 20
verify: Check: 20 * 3 = 60
A: 20

distance medium integer
Q: Dan drives 50 km per hour for 2 hours and then 40 km per hour for 3 hours. What total distance
Q: in km does he cover?
compute: First: 50 * 2 = 100
compute: Then: 40 * 3 = 120
compute: Total: 100 + 120 = 220
verify: Check: 220 - 120 = 100
A: 220

sharing medium integer
Q: Rosa splits 29 cherries evenly among 4 children. How many cherries are left after sharing?
compute: Each gets 7: 4 * 7 = 28
compute: Left over: 29 - 28 = 1
verify: Check: 1 + 28 = 29
A: 1

sharing easy integer
Q: 42 pencils are shared equally by 6 pupils. How many pencils does each pupil get?
compute: Each: 42 / 6 = 7
verify: Check: 7 * 6 = 42
A: 7

sharing medium integer
Q: Ivo hands out 23 stamps equally to 5 friends. How many stamps does each friend receive?
compute: Each gets 4: 5 * 4 = 20
compute: Left over: 23 - 20 = 3
verify: Check: 4 * 5 + 3 = 23
A: 4

ages medium integer
Q: Maya is 8 years old and her aunt is 4 times as old. How old will the aunt be in 3 years?
compute: Aunt now: 8 * 4 = 32
compute: In 3 years: 32 + 3 = 35
verify: Check: 35 - 3 = 32
A: 35

ages medium integer
Q: Leo is 15 and his sister is 6 years younger. What do their ages add up to?
compute: Sister: 15 - 6 = 9
compute: Sum: 15 + 9 = 24
verify: Check: 24 - 15 = 9
A: 24

units medium integer
Q: A film runs for 2 hours and 10 minutes. How long is it in minutes?
compute: Hours: 2 * 60 = 120
compute: Total: 120 + 10 = 130
verify: Check: 130 - 10 = 120
A: 130

units medium integer
Q: A plank measures 3 m and 45 cm. What is its length in cm?
compute: Meters: 3 * 100 = 300
compute: Total: 300 + 45 = 345
verify: Check: 345 - 45 = 300
A: 345

units medium integer
Q: A holiday lasts 2 weeks and 3 days. How many days is the holiday?
compute: Weeks: 2 * 7 = 14
compute: Total: 14 + 3 = 17
verify: Check: 17 - 3 = 14
A: 17

rates medium integer
Q: Kim saves 5 dollars every week and already has 20 dollars. How many dollars will she have after
Q: 6 weeks?
compute: Saved: 5 * 6 = 30
compute: Total: 20 + 30 = 50
verify: Check: 50 - 20 = 30
A: 50

rates easy integer
Q: A copier makes 8 copies a minute. How many copies does it make in 9 minutes?
compute: Copies: 8 * 9 = 72
verify: Check: 72 / 9 = 8
A: 72

geometry easy integer
Q: A rectangular garden bed is 6 m long and 4 m wide. What is its area in square m?
compute: Area: 6 * 4 = 24
verify: Check: 24 / 4 = 6
A: 24

geometry medium integer
Q: A picture frame is a rectangle 9 cm by 5 cm. What is its perimeter in cm?
compute: Half: 9 + 5 = 14
compute: Perimeter: 14 * 2 = 28
verify: Check: 28 / 2 = 14
A: 28

arithmetic easy integer
Q: What is 38 + 47?
compute: 38 + 47 = 85
verify: Check: 85 - 47 = 38
A: 85

arithmetic easy integer
Q: What is 7 * 8?
compute: 7 * 8 = 56
verify: Check: 56 / 8 = 7
A: 56

arithmetic easy integer
Q: Work out 91 - 36.
compute: 91 - 36 = 55
verify: Check: 55 + 36 = 91
A: 55

comparison easy integer
Q: Which is bigger, 64 or 46?
compute: 64 - 46 = 18
conclude: 18 is more than 0, so 64 is larger.
A: 64

comparison easy yes_no
Q: Is 29 greater than 92? Answer yes or no.
compute: 92 - 29 = 63
conclude: 92 is larger, so the answer is no.
A: no

string easy text
Q: Reverse the letters of 'stone'.
read: Letters: s-t-o-n-e
transform: Backwards: e-n-o-t-s
conclude: Joined: enots
A: enots

string easy integer
Q: How many times does the letter 's' appear in 'mississippi'?
read: Letters: m-i-s-s-i-s-s-i-p-p-i
compute: 's' is at positions 3, 4, 6 and 7
conclude: Count: 4
A: 4

string easy text
Q: Remove the vowels from 'planet'.
read: Letters: p-l-a-n-e-t
compute: Vowels: a, e
conclude: Left: plnt
A: plnt

logic medium name
Q: Ada is older than Bea. Bea is older than Cy. Who is the youngest?
deduce: From oldest to youngest: Ada, Bea, Cy
conclude: So the youngest is Cy.
A: Cy

logic easy yes_no
Q: Is 74 an odd number? Answer yes or no.
read: 74 ends in 4
conclude: 4 is even, so 74 is even and the answer is no.
A: no

logic medium yes_no
Q: Is it true that 3 < 9 or 12 < 5? Answer yes or no.
compute: 3 < 9 is true
compute: 12 < 5 is false
conclude: true or false is true, so the answer is yes.
A: yes

high_card_duel easy choice
Q: High Card Duel: I hold the king of clubs and my rival holds the 9 of hearts. Aces are high. Who
Q: wins: me, opponent or tie?
read: My card: king of clubs, rank value 13
read: Opponent's card: 9 of hearts, rank value 9
compute: 13 - 9 = 4, so the winner is me
A: me

high_card_duel medium fraction
Q: High Card Duel: my card is the 8 of spades. What is my chance of beating a random one of the
Q: other 51 cards, as a reduced fraction?
read: My card: 8 of spades, rank value 8
compute: Lower ranks: 8 - 2 = 6
compute: Winning cards: 6 * 4 = 24
compute: Other cards: 52 - 1 = 51
conclude: Probability: 24 / 51 = 8/17
A: 8/17
"""


def _parse_block(block: str) -> tuple[str, str, str, str, tuple[tuple[str, str], ...], str]:
    header, *lines = block.strip().splitlines()
    category, difficulty, answer_type = header.split()
    prompt = " ".join(line[3:] for line in lines if line.startswith("Q: "))
    answer = next(line[3:] for line in lines if line.startswith("A: "))
    steps = tuple(tuple(line.split(": ", 1)) for line in lines if not line.startswith(("Q: ", "A: ")))
    return category, difficulty, answer_type, prompt, steps, answer


GOLDEN_ITEMS = tuple(_parse_block(block) for block in GOLDEN_TEXT.strip().split("\n\n"))


def _golden_trace(category: str, difficulty: str, answer_type: str, prompt: str,
                  steps: tuple[tuple[str, str], ...], answer: str) -> dict:
    if is_eval_owned(prompt):
        # A hand-written prompt that hashes into the eval share must be reworded, never shipped.
        raise RuntimeError(f"golden-v1 prompt is eval-owned, reword it: {prompt!r}")
    task_type = _TASK_TYPES.get(category, "word_problem")
    return {
        "trace_version": DEFAULT_TRACE_VERSION,
        "prompt": prompt,
        "final_answer": answer,
        "steps": [{"i": i, "type": kind, "content": text} for i, (kind, text) in enumerate(steps)],
        "meta": {
            "source": f"generator:{GENERATOR}",
            "generator": GENERATOR,
            "generator_version": GENERATOR_VERSION,
            "seed": None,
            "category": category,
            "task_type": task_type,
            "template": f"{category}.hand_written",
            "difficulty": difficulty,
            "answer_type": answer_type,
            "hand_checked": True,
            "tags": [task_type, category, answer_type, "golden"],
        },
    }


def golden_v1(count: int | None = None, seed: int | None = None) -> GeneratedSet:
    total = len(GOLDEN_ITEMS)
    count = check_int("count", total if count is None else count, 1, total)
    if seed is not None:
        raise ValueError(f"seed must be omitted for golden-v1, a fixed hand-written set (got {seed!r}).")
    traces = [_golden_trace(*item) for item in GOLDEN_ITEMS[:count]]
    manifest = set_manifest(
        name=NAME, version=VERSION, generator=GENERATOR, generator_version=GENERATOR_VERSION, kind="traces",
        seed=None, items=traces,
        categories=count_by(traces, lambda t: t["meta"]["category"]),
        task_types=count_by(traces, lambda t: t["meta"]["task_type"]),
    )
    return GeneratedSet(GENERATOR, traces, manifest)


@lru_cache(maxsize=1)
def prompt_set() -> frozenset[str]:
    return frozenset(item[3] for item in GOLDEN_ITEMS)
