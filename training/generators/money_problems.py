"""Money word problems: shopping totals, change from a payment, savings and work rates.

Same conventions as `word_problems`: one short claim per step, a final check that starts from the
answer, in-distribution numbers from small fact tables (times-table products; sums and differences
with a one-digit number, whole tens or a round amount) and `large=True` for the out-of-distribution
variant.
"""

from __future__ import annotations

import random

from training.generators.base import Task, pick, task, verify
from training.generators.vocab import GOODS, MACHINES, NAMES, NOTES


def _two_names(rng: random.Random) -> tuple[str, str]:
    first, second = rng.sample(NAMES, 2)
    return first, second


# --- shopping ------------------------------------------------------------------------------

def shopping_each_plus_one(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    (_, items), (extra, _) = rng.sample(GOODS, 2)
    q, p = pick(rng, large, (2, 9), (11, 60)), pick(rng, large, (2, 9), (13, 99))
    s = pick(rng, large, (2, 9), (101, 999))
    a, t = q * p, q * p + s
    prompt = (f"{name} buys {q} {items} at {p} dollars each and a {extra} for {s} dollars. "
              f"How many dollars does {name} spend?")
    steps = [("compute", f"{items.capitalize()}: {q} * {p} = {a}"), ("compute", f"Total: {a} + {s} = {t}"),
             verify(t, "-", s, a)]
    return task(prompt, steps, t)


def shopping_two_kinds(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    (_, items1), (_, items2) = rng.sample(GOODS, 2)
    q1, p1 = pick(rng, large, (2, 9), (11, 60)), pick(rng, large, (2, 9), (13, 99))
    # The second kind costs whole tens in distribution, so the total adds tens to a small number.
    q2 = pick(rng, large, (2, 9), (11, 60))
    p2 = rng.randrange(10, 60, 10) if not large else rng.randint(13, 99)
    a, b = q1 * p1, q2 * p2
    prompt = (f"{name} buys {q1} {items1} at {p1} dollars each and {q2} {items2} at {p2} dollars each. "
              "How many dollars is that in total?")
    steps = [("compute", f"{items1.capitalize()}: {q1} * {p1} = {a}"),
             ("compute", f"{items2.capitalize()}: {q2} * {p2} = {b}"),
             ("compute", f"Total: {a} + {b} = {a + b}"), verify(a + b, "-", b, a)]
    return task(prompt, steps, a + b)


def shopping_unit_price(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    one, items = rng.choice(GOODS)
    q, p = pick(rng, large, (2, 9), (11, 60)), pick(rng, large, (2, 9), (13, 99))
    prompt = f"{name} buys {q} {items}. One {one} costs {p} dollars. How many dollars does {name} pay?"
    steps = [("compute", f"Cost: {q} * {p} = {q * p}"), verify(q * p, "/", q, p)]
    return task(prompt, steps, q * p)


def shopping_coupon(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    _, items = rng.choice(GOODS)
    q, p = pick(rng, large, (2, 9), (11, 60)), pick(rng, large, (3, 9), (13, 99))
    a = q * p
    d = rng.randint(1, min(9, a - 1)) if not large else rng.randint(1, a - 1)
    prompt = (f"{name} buys {q} {items} at {p} dollars each and uses a coupon worth {d} dollars. "
              f"How many dollars does {name} pay?")
    steps = [("compute", f"Cost: {q} * {p} = {a}"), ("compute", f"After coupon: {a} - {d} = {a - d}"),
             verify(a - d, "+", d, a)]
    return task(prompt, steps, a - d)


# --- change --------------------------------------------------------------------------------

def _note_above(rng: random.Random, cost: int, large: bool) -> int:
    notes = (500, 1000) if large else NOTES
    return rng.choice([note for note in notes if note > cost])


def change_note(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    _, items = rng.choice(GOODS)
    q, p = pick(rng, large, (2, 9), (11, 40)), pick(rng, large, (2, 9), (13, 24))
    c = q * p
    note = _note_above(rng, c, large)
    prompt = (f"{name} buys {q} {items} at {p} dollars each and pays with a {note} dollar note. "
              f"How many dollars of change does {name} get?")
    steps = [("compute", f"Cost: {q} * {p} = {c}"), ("compute", f"Change: {note} - {c} = {note - c}"),
             verify(note - c, "+", c, note)]
    return task(prompt, steps, note - c)


def change_single(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    one, _ = rng.choice(GOODS)
    p = pick(rng, large, (2, 99), (101, 999))
    note = _note_above(rng, p, large)
    prompt = (f"{name} pays with a {note} dollar note for a {one} that costs {p} dollars. "
              f"How many dollars of change does {name} get?")
    steps = [("compute", f"Change: {note} - {p} = {note - p}"), verify(note - p, "+", p, note)]
    return task(prompt, steps, note - p)


def change_left(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    (one, _), (two, _) = rng.sample(GOODS, 2)
    a, b = pick(rng, large, (10, 99), (50, 400)), pick(rng, large, (2, 9), (50, 400))
    s = a + b
    # A round amount (whole tens) in distribution, so what is left is taken from tens.
    m = rng.randrange(s + 10 - s % 10, s + 60, 10) if not large else rng.randint(s + 1, 999 + s)
    prompt = (f"{name} has {m} dollars and spends {a} dollars on a {one} and {b} dollars on a {two}. "
              "How many dollars are left?")
    steps = [("compute", f"Spent: {a} + {b} = {s}"), ("compute", f"Left: {m} - {s} = {m - s}"),
             verify(m - s, "+", s, m)]
    return task(prompt, steps, m - s)


def change_two_notes(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    _, items = rng.choice(GOODS)
    # Held-out wording, so it stays in small numbers even when asked for large ones.
    note, q = rng.choice((20, 50, 100)), rng.randint(2, 9)
    p = rng.randint(2, (2 * note - 1) // q)
    paid, c = 2 * note, q * p
    prompt = (f"{name} pays with two {note} dollar notes for {q} {items} at {p} dollars each. "
              "How many dollars of change are due?")
    steps = [("compute", f"Paid: 2 * {note} = {paid}"), ("compute", f"Cost: {q} * {p} = {c}"),
             ("compute", f"Change: {paid} - {c} = {paid - c}"), verify(paid - c, "+", c, paid)]
    return task(prompt, steps, paid - c)


# --- rates ---------------------------------------------------------------------------------

def rates_savings(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    s = rng.randrange(10, 100, 10) if not large else rng.randint(100, 999)
    w = pick(rng, large, (2, 9), (13, 99))
    k = pick(rng, large, (2, 9), (11, 52))
    a = w * k
    prompt = (f"{name} has {s} dollars and saves {w} dollars each week. "
              f"How many dollars will {name} have after {k} weeks?")
    steps = [("compute", f"Saved: {w} * {k} = {a}"), ("compute", f"Total: {s} + {a} = {s + a}"),
             verify(s + a, "-", s, a)]
    return task(prompt, steps, s + a)


def rates_machine(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    device, verb, products = rng.choice(MACHINES)
    r, k = pick(rng, large, (2, 9), (13, 99)), pick(rng, large, (2, 9), (11, 60))
    prompt = (f"{name}'s {device} {verb} {r} {products} per minute. "
              f"How many {products} is that in {k} minutes?")
    steps = [("compute", f"{products.capitalize()}: {r} * {k} = {r * k}"), verify(r * k, "/", k, r)]
    return task(prompt, steps, r * k)


def rates_reading(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    r, k = pick(rng, large, (2, 9), (13, 60)), pick(rng, large, (2, 9), (13, 60))
    prompt = f"{name} reads {r} pages a day. How many days does {name} need to read {r * k} pages?"
    steps = [("compute", f"Days: {r * k} / {r} = {k}"), verify(k, "*", r, r * k)]
    return task(prompt, steps, k)


def rates_together(rng: random.Random, large: bool) -> Task:
    first, second = _two_names(rng)
    r1, r2, k = pick(rng, large, (2, 9), (13, 99)), pick(rng, large, (2, 9), (13, 99)), rng.randint(2, 9)
    s = r1 + r2
    prompt = (f"{first} packs {r1} boxes an hour and {second} packs {r2} boxes an hour. "
              f"How many boxes do they pack together in {k} hours?")
    steps = [("compute", f"Per hour: {r1} + {r2} = {s}"), ("compute", f"Total: {s} * {k} = {s * k}"),
             verify(s * k, "/", k, s)]
    return task(prompt, steps, s * k)
