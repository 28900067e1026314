"""Synthetic tasks of dev-reasoning-v2: the v1 families with steps a small model can follow.

Each step does one thing, computable from the line above:

* arithmetic: sums, differences and products are worked in columns (training.generators.scratchpad)
  and asked in several phrasings; the v1 phrasings are kept, so eval-v1's prompts stay in
  distribution.
* comparison: numbers are compared digit by digit from the left instead of by a subtraction.
* string: the word is spelled one letter per item with its position (`1 a, 2 p, 3 p`), then that
  list is reversed, tallied or filtered item by item, then joined.
* logic: the clues are restated in chain order before the order is read off; parity names the
  last digit, its parity, the number's parity and the answer on separate lines.

`large=True` draws the wide ranges (the ones eval-v1 keeps for its out-of-distribution section);
the held-out v1 templates (their wording) never appear here.
"""

from __future__ import annotations

import random

from training.generators.base import Category, Task, pick, task, templates_for, verify
from training.generators.scratchpad import compare_digits, work_for_claim
from training.generators.synthetic import (
    _distinct_pair,
    _word,
    _yes_no,
    and_or_task,
    order_task,
    parity_task,
    sum_versus_number,
)
from training.generators.vocab import SYLLABLES, VOWELS

ADD_PHRASINGS = ("What is {a} + {b}?", "Compute {a} + {b}.", "Calculate {a} + {b}.", "What is the sum of {a} and {b}?",
                 "Add {a} and {b}.", "How much is {a} plus {b}?")
SUBTRACT_PHRASINGS = ("What is {a} - {b}?", "Compute {a} - {b}.", "Calculate {a} - {b}.", "What is {a} minus {b}?",
                      "Subtract {b} from {a}.", "Take {b} away from {a}. What is left?")
MULTIPLY_PHRASINGS = ("What is {a} * {b}?", "Compute {a} * {b}.", "Calculate {a} * {b}.", "What is {a} times {b}?",
                      "Multiply {a} by {b}.", "What is the product of {a} and {b}?")
ADD_SUBTRACT_PHRASINGS = ("What is {a} + {b} - {c}?", "Compute {a} + {b} - {c}.", "Add {a} and {b}, then subtract {c}.",
                          "What is {a} plus {b} minus {c}?")
LARGER_PHRASINGS = ("Which is larger, {a} or {b}?", "Which number is bigger: {a} or {b}?",
                    "Which of {a} and {b} is greater?")
SMALLER_PHRASINGS = ("Which is smaller, {a} or {b}?", "Which number is less: {a} or {b}?",
                     "Which of {a} and {b} is less?")


def claim_steps(a: int, op: str, b: int, result: int, label: str = "") -> list[tuple[str, str]]:
    """The columns of `a op b` (when it needs them), then the claim itself."""
    work = [("compute", line) for line in work_for_claim(a, op, b)]
    return work + [("compute", f"{label}{a} {op} {b} = {result}")]


# --- arithmetic ----------------------------------------------------------------------------

def arithmetic_add(rng: random.Random, large: bool) -> Task:
    a, b = pick(rng, large, (10, 199), (200, 9999)), pick(rng, large, (2, 9), (100, 9999))
    if rng.random() < 0.5:
        a, b = b, a
    prompt = rng.choice(ADD_PHRASINGS).format(a=a, b=b)
    return task(prompt, [*claim_steps(a, "+", b, a + b), verify(a + b, "-", b, a)], a + b)


def arithmetic_subtract(rng: random.Random, large: bool) -> Task:
    a = pick(rng, large, (11, 99), (1000, 9999))
    b = rng.randint(2, 9) if not large else rng.randint(100, a - 1)
    prompt = rng.choice(SUBTRACT_PHRASINGS).format(a=a, b=b)
    return task(prompt, [*claim_steps(a, "-", b, a - b), verify(a - b, "+", b, a)], a - b)


def arithmetic_multiply(rng: random.Random, large: bool) -> Task:
    a, b = pick(rng, large, (2, 9), (26, 99)), pick(rng, large, (2, 9), (26, 99))
    if large and rng.random() < 0.5:
        b = rng.randint(2, 9)  # long numbers times one digit: the columns the partial products use
        a = rng.randint(100, 9999)
    if rng.random() < 0.5:
        a, b = b, a
    prompt = rng.choice(MULTIPLY_PHRASINGS).format(a=a, b=b)
    return task(prompt, [*claim_steps(a, "*", b, a * b), verify(a * b, "/", b, a)], a * b)


def arithmetic_add_subtract(rng: random.Random, large: bool) -> Task:
    a, b = pick(rng, large, (10, 99), (100, 999)), pick(rng, large, (2, 9), (100, 999))
    c = rng.randint(2, 9) if not large else rng.randint(2, a + b - 1)
    s = a + b
    prompt = rng.choice(ADD_SUBTRACT_PHRASINGS).format(a=a, b=b, c=c)
    steps = [*claim_steps(a, "+", b, s), *claim_steps(s, "-", c, s - c), ("verify", f"Check: {s - c} + {c} = {s}")]
    return task(prompt, steps, s - c)


# --- comparison ----------------------------------------------------------------------------

def comparison_larger(rng: random.Random, large: bool) -> Task:
    a, b = _distinct_pair(rng, large)
    lines, larger = compare_digits(a, b)
    prompt = rng.choice(LARGER_PHRASINGS).format(a=a, b=b)
    return task(prompt, [("compare", line) for line in lines], larger)


def comparison_smaller(rng: random.Random, large: bool) -> Task:
    a, b = _distinct_pair(rng, large)
    lines, larger = compare_digits(a, b)
    smaller = a + b - larger
    prompt = rng.choice(SMALLER_PHRASINGS).format(a=a, b=b)
    steps = [("compare", line) for line in lines] + [("conclude", f"So {smaller} is smaller.")]
    return task(prompt, steps, smaller)


def comparison_greater(rng: random.Random, large: bool) -> Task:
    a, b = _distinct_pair(rng, large)
    lines, larger = compare_digits(a, b)
    answer = _yes_no(larger == a)
    steps = [("compare", line) for line in lines] + [("conclude", f"{larger} is larger, so the answer is {answer}.")]
    return task(f"Is {a} greater than {b}? Answer yes or no.", steps, answer, "yes_no")


def comparison_sum(rng: random.Random, large: bool) -> Task:
    a, b, c, more = sum_versus_number(rng, large)
    s = a + b
    answer = _yes_no(more)
    lines, _ = compare_digits(s, c)
    steps = [*claim_steps(a, "+", b, s), *(("compare", line) for line in lines),
             ("conclude", f"{s} is {'more' if more else 'less'} than {c}, so the answer is {answer}.")]
    return task(f"Is {a} + {b} more than {c}? Answer yes or no.", steps, answer, "yes_no")


# --- string transforms ---------------------------------------------------------------------

def _string_word(rng: random.Random, large: bool) -> str:
    if large:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(4, 6)))
    return _word(rng, False)


def _letters(word: str) -> str:
    return ", ".join(f"{position} {letter}" for position, letter in enumerate(word, start=1))


def string_reverse(rng: random.Random, large: bool) -> Task:
    word = _string_word(rng, large)
    backwards = ", ".join(f"{position} {word[position - 1]}" for position in range(len(word), 0, -1))
    prompt = rng.choice(("Reverse the letters of '{}'.", "Write '{}' backwards.", "Spell '{}' backwards.")).format(word)
    steps = [("read", f"Letters: {_letters(word)}"), ("transform", f"Backwards: {backwards}"),
             ("conclude", f"Joined: {word[::-1]}")]
    return task(prompt, steps, word[::-1], "text")


def string_count_letter(rng: random.Random, large: bool) -> Task:
    word = _string_word(rng, large)
    absent = sorted(set("abcdefghijklmnopqrstuvwxyz") - set(word))
    letter = rng.choice(word) if rng.random() < 0.8 else rng.choice(absent)
    tally, running = [], 0
    for ch in word:
        running += ch == letter
        tally.append(f"{ch} {running}")
    prompt = rng.choice(("How many times does the letter '{}' appear in '{}'?", "Count the letter '{}' in '{}'.",
                         "How often does '{}' occur in '{}'?")).format(letter, word)
    steps = [("read", f"Letters: {_letters(word)}"), ("compute", f"Running count of {letter}: {', '.join(tally)}"),
             ("conclude", f"Count: {running}")]
    return task(prompt, steps, running)


def string_drop_vowels(rng: random.Random, large: bool) -> Task:
    word = _string_word(rng, large)
    while all(ch in VOWELS for ch in word) or not any(ch in VOWELS for ch in word):
        word = _string_word(rng, large)
    kept = "".join(ch for ch in word if ch not in VOWELS)
    marks = ", ".join(f"{ch} {'drop' if ch in VOWELS else 'keep'}" for ch in word)
    prompt = rng.choice(("Remove the vowels from '{}'.", "Delete every vowel in '{}'.",
                         "Write '{}' without its vowels.")).format(word)
    steps = [("read", f"Letters: {_letters(word)}"), ("compute", f"Vowels dropped: {marks}"),
             ("conclude", f"Joined: {kept}")]
    return task(prompt, steps, kept, "text")


# --- logic ---------------------------------------------------------------------------------

def logic_order(rng: random.Random, large: bool) -> Task:
    return order_task(rng, one_thing_per_step=True)


def logic_parity(rng: random.Random, large: bool) -> Task:
    return parity_task(rng, large, one_thing_per_step=True)


def logic_and_or(rng: random.Random, large: bool) -> Task:
    return and_or_task(rng, one_thing_per_step=True)


CATEGORIES = (
    Category("arithmetic", "synthetic", templates_for(
        "arithmetic", [(arithmetic_add, "easy"), (arithmetic_subtract, "easy"), (arithmetic_multiply, "easy"),
                       (arithmetic_add_subtract, "medium")], [])),
    Category("comparison", "synthetic", templates_for(
        "comparison", [(comparison_larger, "easy"), (comparison_smaller, "easy"),
                       (comparison_greater, "easy"), (comparison_sum, "medium")], [])),
    Category("string", "synthetic", templates_for(
        "string", [(string_reverse, "easy"), (string_count_letter, "easy"), (string_drop_vowels, "easy")], [])),
    Category("logic", "synthetic", templates_for(
        "logic", [(logic_order, "medium"), (logic_parity, "easy"), (logic_and_or, "medium")], [],
        fixed_size=(logic_order, logic_and_or))),
)
