"""Structured synthetic tasks (the 30 % share of dev-reasoning-v1): arithmetic, comparisons,
string transforms and simple logic, with varied answers (numbers, yes/no, words, names).

In distribution, sums and differences pair a number below 200 with a one-digit one, products stay
inside the 9 × 9 times table and compared numbers are close (their difference is one digit), so
every computed claim comes from a small fact table; `large=True` keeps the wide ranges for the
out-of-distribution section.

String transforms avoid case changes on purpose: `answer_exact` folds case, so an "uppercase
this" task could be passed by copying the input.
"""

from __future__ import annotations

import random

from training.generators.base import Category, Task, pick, task, templates_for, verify
from training.generators.vocab import NAMES, ORDER_RELATIONS, SYLLABLES, VOWELS, WORDS


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# --- arithmetic ----------------------------------------------------------------------------

def arithmetic_add(rng: random.Random, large: bool) -> Task:
    a, b = pick(rng, large, (10, 199), (200, 9999)), pick(rng, large, (2, 9), (100, 9999))
    if rng.random() < 0.5:
        a, b = b, a
    prompt = rng.choice(("What is {} + {}?", "Compute {} + {}.", "Calculate {} + {}.")).format(a, b)
    return task(prompt, [("compute", f"{a} + {b} = {a + b}"), verify(a + b, "-", b, a)], a + b)


def arithmetic_subtract(rng: random.Random, large: bool) -> Task:
    a = pick(rng, large, (11, 99), (1000, 9999))
    b = rng.randint(2, 9) if not large else rng.randint(100, a - 1)
    prompt = rng.choice(("What is {} - {}?", "Compute {} - {}.", "Calculate {} - {}.")).format(a, b)
    return task(prompt, [("compute", f"{a} - {b} = {a - b}"), verify(a - b, "+", b, a)], a - b)


def arithmetic_multiply(rng: random.Random, large: bool) -> Task:
    a, b = pick(rng, large, (2, 9), (26, 99)), pick(rng, large, (2, 9), (26, 99))
    if rng.random() < 0.5:
        a, b = b, a
    prompt = rng.choice(("What is {} * {}?", "Compute {} * {}.", "Calculate {} * {}.")).format(a, b)
    return task(prompt, [("compute", f"{a} * {b} = {a * b}"), verify(a * b, "/", b, a)], a * b)


def arithmetic_add_subtract(rng: random.Random, large: bool) -> Task:
    a, b = pick(rng, large, (10, 99), (100, 999)), pick(rng, large, (2, 9), (100, 999))
    c = rng.randint(2, 9) if not large else rng.randint(2, a + b - 1)
    s = a + b
    prompt = rng.choice(("What is {} + {} - {}?", "Compute {} + {} - {}.")).format(a, b, c)
    steps = [("compute", f"{a} + {b} = {s}"), ("compute", f"{s} - {c} = {s - c}"),
             ("verify", f"Check: {s - c} + {c} = {s}")]
    return task(prompt, steps, s - c)


def arithmetic_multiply_add(rng: random.Random, large: bool) -> Task:
    a, b, c = rng.randint(2, 9), rng.randint(2, 12), rng.randint(2, 50)
    p = a * b
    steps = [("compute", f"{a} * {b} = {p}"), ("compute", f"{p} + {c} = {p + c}"),
             ("verify", f"Check: {p + c} - {c} = {p}")]
    return task(f"What is {a} * {b} + {c}?", steps, p + c)


# --- comparison ----------------------------------------------------------------------------

def _distinct_pair(rng: random.Random, large: bool) -> tuple[int, int]:
    if large:
        a, b = rng.sample(range(100, 100_000), 2)
        return a, b
    # Close numbers in distribution: the difference the steps compute is one digit.
    a, gap = rng.randint(1, 90), rng.randint(1, 9)
    return (a, a + gap) if rng.random() < 0.5 else (a + gap, a)


def comparison_larger(rng: random.Random, large: bool) -> Task:
    a, b = _distinct_pair(rng, large)
    hi, lo = max(a, b), min(a, b)
    prompt = rng.choice(("Which is larger, {} or {}?", "Which number is bigger: {} or {}?")).format(a, b)
    steps = [("compute", f"{hi} - {lo} = {hi - lo}"),
             ("conclude", f"{hi - lo} is more than 0, so {hi} is larger.")]
    return task(prompt, steps, hi)


def comparison_smaller(rng: random.Random, large: bool) -> Task:
    a, b = _distinct_pair(rng, large)
    hi, lo = max(a, b), min(a, b)
    prompt = rng.choice(("Which is smaller, {} or {}?", "Which number is less: {} or {}?")).format(a, b)
    steps = [("compute", f"{hi} - {lo} = {hi - lo}"),
             ("conclude", f"{hi - lo} is more than 0, so {lo} is smaller.")]
    return task(prompt, steps, lo)


def comparison_greater(rng: random.Random, large: bool) -> Task:
    a, b = _distinct_pair(rng, large)
    hi, lo = max(a, b), min(a, b)
    answer = _yes_no(a > b)
    prompt = f"Is {a} greater than {b}? Answer yes or no."
    steps = [("compute", f"{hi} - {lo} = {hi - lo}"),
             ("conclude", f"{hi} is larger, so the answer is {answer}.")]
    return task(prompt, steps, answer, "yes_no")


def sum_versus_number(rng: random.Random, large: bool) -> tuple[int, int, int, bool]:
    """`Is a + b more than c?`: a, b, c and whether it is."""
    a, b = pick(rng, large, (10, 60), (100, 9999)), pick(rng, large, (2, 9), (100, 9999))
    more = rng.random() < 0.5  # choose the answer first so yes and no stay balanced
    gap = rng.randint(1, 9) if not large else rng.randint(1, 30)
    return a, b, a + b - gap if more else a + b + gap, more


def comparison_sum(rng: random.Random, large: bool) -> Task:
    a, b, c, more = sum_versus_number(rng, large)
    s = a + b
    hi, lo = max(s, c), min(s, c)
    answer = _yes_no(more)
    prompt = f"Is {a} + {b} more than {c}? Answer yes or no."
    steps = [("compute", f"{a} + {b} = {s}"), ("compute", f"{hi} - {lo} = {hi - lo}"),
             ("conclude", f"{s} is {'more' if more else 'less'} than {c}, so the answer is {answer}.")]
    return task(prompt, steps, answer, "yes_no")


def comparison_largest_of_four(rng: random.Random, large: bool) -> Task:
    numbers = rng.sample(range(1, 100), 4)
    top = max(numbers)
    prompt = "Which is the largest of {}, {}, {} and {}?".format(*numbers)
    steps = [("compute", f"{top} - {n} = {top - n}") for n in numbers if n != top]
    steps.append(("conclude", f"All differences are more than 0, so {top} is the largest."))
    return task(prompt, steps, top)


# --- string transforms ---------------------------------------------------------------------

def _word(rng: random.Random, large: bool) -> str:
    if large:
        return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(5, 6)))
    if rng.random() < 0.5:
        return rng.choice(WORDS)
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def _spelled(word: str) -> str:
    return "-".join(word)


def _and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def string_reverse(rng: random.Random, large: bool) -> Task:
    word = _word(rng, large)
    backwards = word[::-1]
    prompt = rng.choice(("Reverse the letters of '{}'.", "Write '{}' backwards.")).format(word)
    steps = [("read", f"Letters: {_spelled(word)}"), ("transform", f"Backwards: {_spelled(backwards)}"),
             ("conclude", f"Joined: {backwards}")]
    return task(prompt, steps, backwards, "text")


def string_count_letter(rng: random.Random, large: bool) -> Task:
    word = _word(rng, large)
    absent = sorted(set("abcdefghijklmnopqrstuvwxyz") - set(word))
    letter = rng.choice(word) if rng.random() < 0.8 else rng.choice(absent)
    positions = [str(i + 1) for i, ch in enumerate(word) if ch == letter]
    prompt = rng.choice(("How many times does the letter '{}' appear in '{}'?",
                         "Count the letter '{}' in '{}'.")).format(letter, word)
    found = f"'{letter}' is at position{'s' if len(positions) > 1 else ''} {_and_list(positions)}" \
        if positions else f"'{letter}' does not appear"
    steps = [("read", f"Letters: {_spelled(word)}"), ("compute", found),
             ("conclude", f"Count: {len(positions)}")]
    return task(prompt, steps, len(positions))


def string_drop_vowels(rng: random.Random, large: bool) -> Task:
    word = _word(rng, large)
    while all(ch in VOWELS for ch in word) or not any(ch in VOWELS for ch in word):
        word = _word(rng, large)
    kept = "".join(ch for ch in word if ch not in VOWELS)
    prompt = rng.choice(("Remove the vowels from '{}'.", "Delete every vowel in '{}'.")).format(word)
    steps = [("read", f"Letters: {_spelled(word)}"),
             ("compute", f"Vowels: {', '.join(ch for ch in word if ch in VOWELS)}"),
             ("conclude", f"Left: {kept}")]
    return task(prompt, steps, kept, "text")


def string_sort_letters(rng: random.Random, large: bool) -> Task:
    word = _word(rng, False)
    ordered = "".join(sorted(word))
    steps = [("read", f"Letters: {_spelled(word)}"), ("transform", f"Sorted: {_spelled(ordered)}"),
             ("conclude", f"Joined: {ordered}")]
    return task(f"Write the letters of '{word}' in alphabetical order.", steps, ordered, "text")


# --- logic ---------------------------------------------------------------------------------

def order_task(rng: random.Random, one_thing_per_step: bool) -> Task:
    """Three names ordered by two shuffled clues; v2 (one_thing_per_step) restates the clues in chain
    order before reading the order off."""
    first, middle, last = rng.sample(NAMES, 3)
    comparative, top, bottom = rng.choice(ORDER_RELATIONS)
    chain = [f"{first} is {comparative} than {middle}.", f"{middle} is {comparative} than {last}."]
    clues = chain[:]
    rng.shuffle(clues)
    asked, answer = (top, first) if rng.random() < 0.5 else (bottom, last)
    prompt = f"{clues[0]} {clues[1]} Who is the {asked}?"
    steps = [("deduce", f"In order: {chain[0]} {chain[1]}")] if one_thing_per_step else []
    steps += [("deduce", f"From {top} to {bottom}: {first}, {middle}, {last}"),
              ("conclude", f"So the {asked} is {answer}.")]
    return task(prompt, steps, answer, "name")


def logic_order(rng: random.Random, large: bool) -> Task:
    return order_task(rng, one_thing_per_step=False)


def parity_task(rng: random.Random, large: bool, one_thing_per_step: bool) -> Task:
    """Is n even or odd; v2 (one_thing_per_step) names the last digit's parity, the number's and the
    answer on lines of their own."""
    n = pick(rng, large, (1, 999), (10**6, 10**9))
    asked = rng.choice(("even", "odd"))
    parity = "even" if n % 2 == 0 else "odd"
    answer = _yes_no(parity == asked)
    last = str(n)[-1]
    prompt = f"Is {n} an {asked} number? Answer yes or no."
    if one_thing_per_step:
        steps = [("read", f"{n} ends in {last}"), ("compute", f"{last} is {parity}"),
                 ("compute", f"So {n} is {parity}"), ("conclude", f"Asked {asked}, so the answer is {answer}.")]
    else:
        steps = [("read", f"{n} ends in {last}"),
                 ("conclude", f"{last} is {parity}, so {n} is {parity} and the answer is {answer}.")]
    return task(prompt, steps, answer, "yes_no")


def logic_parity(rng: random.Random, large: bool) -> Task:
    return parity_task(rng, large, one_thing_per_step=False)


def _comparison_with_truth(rng: random.Random, truth: bool) -> tuple[int, int]:
    a, b = rng.sample(range(1, 21), 2)
    return (min(a, b), max(a, b)) if truth else (max(a, b), min(a, b))


def and_or_task(rng: random.Random, one_thing_per_step: bool) -> Task:
    """`a < b and/or c < d`; v2 (one_thing_per_step) combines the truths and concludes on separate lines."""
    connective = rng.choice(("and", "or"))
    t1, t2 = rng.random() < 0.5, rng.random() < 0.5
    (a, b), (c, d) = _comparison_with_truth(rng, t1), _comparison_with_truth(rng, t2)
    result = (t1 and t2) if connective == "and" else (t1 or t2)
    word = {True: "true", False: "false"}
    answer = _yes_no(result)
    prompt = f"Is it true that {a} < {b} {connective} {c} < {d}? Answer yes or no."
    steps = [("compute", f"{a} < {b} is {word[t1]}"), ("compute", f"{c} < {d} is {word[t2]}")]
    if one_thing_per_step:
        steps += [("compute", f"{word[t1]} {connective} {word[t2]} is {word[result]}"),
                  ("conclude", f"So the answer is {answer}.")]
    else:
        steps.append(("conclude", f"{word[t1]} {connective} {word[t2]} is {word[result]}, "
                                  f"so the answer is {answer}."))
    return task(prompt, steps, answer, "yes_no")


def logic_and_or(rng: random.Random, large: bool) -> Task:
    return and_or_task(rng, one_thing_per_step=False)


def logic_order_of_four(rng: random.Random, large: bool) -> Task:
    people = rng.sample(NAMES, 4)
    comparative, top, bottom = rng.choice(ORDER_RELATIONS)
    clues = [f"{people[i]} is {comparative} than {people[i + 1]}." for i in range(3)]
    rng.shuffle(clues)
    prompt = f"{' '.join(clues)} Who is the {bottom}?"
    steps = [("deduce", f"From {top} to {bottom}: {', '.join(people)}"),
             ("conclude", f"So the {bottom} is {people[-1]}.")]
    return task(prompt, steps, people[-1], "name")



CATEGORIES = (
    Category("arithmetic", "synthetic", templates_for(
        "arithmetic", [(arithmetic_add, "easy"), (arithmetic_subtract, "easy"), (arithmetic_multiply, "easy"),
                       (arithmetic_add_subtract, "medium")], [arithmetic_multiply_add])),
    Category("comparison", "synthetic", templates_for(
        "comparison", [(comparison_larger, "easy"), (comparison_smaller, "easy"),
                       (comparison_greater, "easy"), (comparison_sum, "medium")],
        [comparison_largest_of_four])),
    Category("string", "synthetic", templates_for(
        "string", [(string_reverse, "easy"), (string_count_letter, "easy"), (string_drop_vowels, "easy")],
        [string_sort_letters])),
    Category("logic", "synthetic", templates_for(
        "logic", [(logic_order, "medium"), (logic_parity, "easy"), (logic_and_or, "medium")],
        [logic_order_of_four], fixed_size=(logic_order, logic_and_or))),
)
