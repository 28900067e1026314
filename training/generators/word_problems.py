"""Word problems (the 70 % reasoning share of dev-reasoning-v1); money ones live in money_problems.

Every step is one short claim the model can copy or compute left to right (`Pens: 3 * 4 = 12`),
and every trace ends with a verification that starts from the answer and undoes the last
operation back to a value stated earlier (`Check: 19 - 7 = 12`).

In-distribution numbers are chosen so that every computed claim comes from a small fact table a
small model can learn: products stay inside the 9 × 9 times table (a speed of 70 is 7 tens, an hour
is 60 minutes) apart from doubling or quadrupling a perimeter, and every sum or difference involves
a one-digit number, whole tens or a round amount (a 50 dollar note), or stays below 40 (teenagers'
ages). Larger numbers are then copied, never computed. `large=True` keeps the wide ranges as the
out-of-distribution variant, so the eval set still measures whether the arithmetic generalises.
Held-out templates use wording that training never sees.
"""

from __future__ import annotations

import random

from training.generators.base import Category, Task, pick, task, templates_for, verify
from training.generators.money_problems import (
    change_left,
    change_note,
    change_single,
    change_two_notes,
    rates_machine,
    rates_reading,
    rates_savings,
    rates_together,
    shopping_coupon,
    shopping_each_plus_one,
    shopping_two_kinds,
    shopping_unit_price,
)
from training.generators.vocab import (
    ACTIVITIES,
    AREAS,
    HEAVY_THINGS,
    LONG_THINGS,
    NAMES,
    PLACES,
    SHAREABLES,
    SQUARES,
    VEHICLES,
)


def _two_names(rng: random.Random) -> tuple[str, str]:
    first, second = rng.sample(NAMES, 2)
    return first, second



# --- distance ------------------------------------------------------------------------------

def _speed(rng: random.Random, large: bool) -> int:
    # Round speeds keep products easy in distribution (70 * 8 = 560 is 7 * 8 with a zero).
    return rng.randint(41, 99) if large else rng.randrange(10, 100, 10)


def distance_one_leg(rng: random.Random, large: bool) -> Task:
    name, vehicle = rng.choice(NAMES), rng.choice(VEHICLES)
    v, h = _speed(rng, large), pick(rng, large, (2, 9), (11, 30))
    prompt = f"{name} rides a {vehicle} at {v} km per hour for {h} hours. How many km does {name} travel?"
    steps = [("compute", f"Distance: {v} * {h} = {v * h}"), verify(v * h, "/", h, v)]
    return task(prompt, steps, v * h)


def _short_leg(rng: random.Random, large: bool) -> tuple[int, int]:
    # Up to 50 km per hour for up to 5 hours in distribution, so the total adds two small tens.
    if large:
        return _speed(rng, large), pick(rng, large, (2, 9), (11, 30))
    return rng.randrange(10, 60, 10), rng.randint(2, 5)


def distance_two_legs(rng: random.Random, large: bool) -> Task:
    name = rng.choice(NAMES)
    (v1, h1), (v2, h2) = _short_leg(rng, large), _short_leg(rng, large)
    a, b = v1 * h1, v2 * h2
    prompt = (f"{name} drives {v1} km per hour for {h1} hours, then {v2} km per hour for {h2} hours. "
              "How many km is that in total?")
    steps = [("compute", f"First: {v1} * {h1} = {a}"), ("compute", f"Then: {v2} * {h2} = {b}"),
             ("compute", f"Total: {a} + {b} = {a + b}"), verify(a + b, "-", b, a)]
    return task(prompt, steps, a + b)


def distance_speed(rng: random.Random, large: bool) -> Task:
    name, vehicle = rng.choice(NAMES), rng.choice(VEHICLES)
    v, h = _speed(rng, large), pick(rng, large, (2, 9), (11, 30))
    prompt = (f"{name} rides a {vehicle} {v * h} km in {h} hours at a steady speed. "
              "What is the speed in km per hour?")
    steps = [("compute", f"Speed: {v * h} / {h} = {v}"), verify(v, "*", h, v * h)]
    return task(prompt, steps, v)


def distance_duration(rng: random.Random, large: bool) -> Task:
    name, vehicle = rng.choice(NAMES), rng.choice(VEHICLES)
    v, h = _speed(rng, large), pick(rng, large, (2, 9), (11, 30))
    prompt = f"{name} covers {v * h} km by {vehicle} at {v} km per hour. How many hours does that take?"
    steps = [("compute", f"Hours: {v * h} / {v} = {h}"), verify(h, "*", v, v * h)]
    return task(prompt, steps, h)


# --- sharing -------------------------------------------------------------------------------

def _division(rng: random.Random, large: bool) -> tuple[int, int, int]:
    k, q = pick(rng, large, (2, 9), (11, 25)), pick(rng, large, (2, 9), (13, 60))
    return k, q, rng.randint(0, k - 1)


def sharing_leftover(rng: random.Random, large: bool) -> Task:
    name, things = rng.choice(NAMES), rng.choice(SHAREABLES)
    k, q, r = _division(rng, large)
    m, total = k * q, k * q + r
    prompt = f"{name} shares {total} {things} equally among {k} friends. How many {things} are left over?"
    steps = [("compute", f"Each gets {q}: {k} * {q} = {m}"), ("compute", f"Left over: {total} - {m} = {r}"),
             verify(r, "+", m, total)]
    return task(prompt, steps, r)


def sharing_each(rng: random.Random, large: bool) -> Task:
    name, things = rng.choice(NAMES), rng.choice(SHAREABLES)
    k, q, r = _division(rng, large)
    m, total = k * q, k * q + r
    prompt = f"{name} shares {total} {things} equally among {k} friends. How many {things} does each get?"
    steps = [("compute", f"Each gets {q}: {k} * {q} = {m}"), ("compute", f"Left over: {total} - {m} = {r}"),
             ("verify", f"Check: {q} * {k} + {r} = {total}")]
    return task(prompt, steps, q)


def sharing_exact(rng: random.Random, large: bool) -> Task:
    name, things = rng.choice(NAMES), rng.choice(SHAREABLES)
    k, q, _ = _division(rng, large)
    total = k * q
    prompt = (f"{name} packs {total} {things} into {k} bags with the same number in each. "
              f"How many {things} go in each bag?")
    steps = [("compute", f"Each bag: {total} / {k} = {q}"), verify(q, "*", k, total)]
    return task(prompt, steps, q)


def sharing_boxes_needed(rng: random.Random, large: bool) -> Task:
    things = rng.choice(SHAREABLES)
    k, q, _ = _division(rng, large)
    r = rng.randint(1, k - 1)
    m, total = k * q, k * q + r
    prompt = f"{total} {things} go into boxes that hold {k} each. How many boxes are needed for all of them?"
    steps = [("compute", f"Full boxes: {k} * {q} = {m}"), ("compute", f"Left over: {total} - {m} = {r}"),
             ("compute", f"One more box: {q} + 1 = {q + 1}"), ("verify", f"Check: {q + 1} * {k} = {m + k}")]
    return task(prompt, steps, q + 1)


# --- ages ----------------------------------------------------------------------------------

def ages_times_later(rng: random.Random, large: bool) -> Task:
    first, second = _two_names(rng)
    a, k = pick(rng, large, (2, 9), (13, 40)), pick(rng, large, (2, 5), (6, 12))
    y = pick(rng, large, (2, 9), (21, 99))
    b = a * k
    prompt = f"{first} is {a} years old. {second} is {k} times as old. How old will {second} be in {y} years?"
    steps = [("compute", f"{second} now: {a} * {k} = {b}"), ("compute", f"In {y} years: {b} + {y} = {b + y}"),
             verify(b + y, "-", y, b)]
    return task(prompt, steps, b + y)


def ages_younger_sum(rng: random.Random, large: bool) -> Task:
    first, second = _two_names(rng)
    # Teenagers in distribution: both ages and their sum stay below 40.
    a = pick(rng, large, (10, 19), (100, 999))
    d = rng.randint(1, min(9, a - 2)) if not large else rng.randint(1, a - 2)
    b = a - d
    prompt = (f"{first} is {a} years old and {second} is {d} years younger. "
              "What is the sum of their ages?")
    steps = [("compute", f"{second}: {a} - {d} = {b}"), ("compute", f"Sum: {a} + {b} = {a + b}"),
             verify(a + b, "-", a, b)]
    return task(prompt, steps, a + b)


def ages_older_past(rng: random.Random, large: bool) -> Task:
    first, second = _two_names(rng)
    a, d = pick(rng, large, (5, 40), (100, 600)), pick(rng, large, (1, 9), (100, 300))
    b = a + d
    y = rng.randint(1, min(9, b - 1)) if not large else rng.randint(100, b - 1)
    prompt = f"{first} is {a} years old and {second} is {d} years older. How old was {second} {y} years ago?"
    steps = [("compute", f"{second} now: {a} + {d} = {b}"),
             ("compute", f"{y} years ago: {b} - {y} = {b - y}"), verify(b - y, "+", y, b)]
    return task(prompt, steps, b - y)


def ages_until(rng: random.Random, large: bool) -> Task:
    first, second = _two_names(rng)
    a = pick(rng, large, (2, 30), (100, 500))
    b = a + pick(rng, large, (1, 9), (100, 400))
    prompt = (f"{first} is {a} and {second} is {b}. "
              f"In how many years will {first} be as old as {second} is now?")
    steps = [("compute", f"Years: {b} - {a} = {b - a}"), verify(b - a, "+", a, b)]
    return task(prompt, steps, b - a)


# --- units ---------------------------------------------------------------------------------

def _mixed_units(prompt: str, big: int, factor: int, small: int, big_label: str) -> Task:
    a = big * factor
    steps = [("compute", f"{big_label}: {big} * {factor} = {a}"),
             ("compute", f"Total: {a} + {small} = {a + small}"), verify(a + small, "-", small, a)]
    return task(prompt, steps, a + small)


def units_hours_minutes(rng: random.Random, large: bool) -> Task:
    name, activity = rng.choice(NAMES), rng.choice(ACTIVITIES)
    h, m = pick(rng, large, (1, 9), (10, 99)), rng.randint(1, 59)
    prompt = f"{name}'s {activity} lasts {h} hours and {m} minutes. How many minutes is that?"
    return _mixed_units(prompt, h, 60, m, "Hours")


def units_meters_cm(rng: random.Random, large: bool) -> Task:
    name, thing = rng.choice(NAMES), rng.choice(LONG_THINGS)
    meters, cm = pick(rng, large, (1, 9), (10, 99)), rng.randint(1, 99)
    prompt = f"{name}'s {thing} is {meters} m and {cm} cm long. How many cm is that?"
    return _mixed_units(prompt, meters, 100, cm, "Meters")


def units_weeks_days(rng: random.Random, large: bool) -> Task:
    name, place = rng.choice(NAMES), rng.choice(PLACES)
    weeks, days = pick(rng, large, (1, 9), (10, 99)), rng.randint(1, 6)
    prompt = f"{name} spent {weeks} weeks and {days} days at {place}. How many days is that?"
    return _mixed_units(prompt, weeks, 7, days, "Weeks")


def units_kg_g(rng: random.Random, large: bool) -> Task:
    name, thing = rng.choice(NAMES), rng.choice(HEAVY_THINGS)
    kg, grams = pick(rng, large, (1, 9), (10, 99)), rng.randint(1, 999)
    prompt = f"{name}'s {thing} weighs {kg} kg and {grams} g. How many grams is that?"
    return _mixed_units(prompt, kg, 1000, grams, "Kilograms")


def units_seconds(rng: random.Random, large: bool) -> Task:
    h, m, s = pick(rng, large, (1, 5), (6, 30)), rng.randint(1, 59), rng.randint(1, 59)
    a, b = h * 3600, m * 60
    prompt = f"How many seconds are in {h} hours, {m} minutes and {s} seconds?"
    steps = [("compute", f"Hours: {h} * 3600 = {a}"), ("compute", f"Minutes: {m} * 60 = {b}"),
             ("compute", f"Total: {a} + {b} + {s} = {a + b + s}"), verify(a + b + s, "-", s, a + b)]
    return task(prompt, steps, a + b + s)


# --- geometry ------------------------------------------------------------------------------

def geometry_area(rng: random.Random, large: bool) -> Task:
    name, area = rng.choice(NAMES), rng.choice(AREAS)
    length, width = pick(rng, large, (2, 9), (16, 99)), pick(rng, large, (2, 9), (13, 99))
    prompt = f"{name}'s {area} is {length} m long and {width} m wide. What is its area in square m?"
    steps = [("compute", f"Area: {length} * {width} = {length * width}"),
             verify(length * width, "/", width, length)]
    return task(prompt, steps, length * width)


def geometry_perimeter(rng: random.Random, large: bool) -> Task:
    name, area = rng.choice(NAMES), rng.choice(AREAS)
    length, width = pick(rng, large, (2, 40), (100, 999)), pick(rng, large, (2, 9), (100, 999))
    s = length + width
    prompt = f"{name}'s {area} is {length} m long and {width} m wide. What is its perimeter in m?"
    steps = [("compute", f"Half: {length} + {width} = {s}"), ("compute", f"Perimeter: {s} * 2 = {2 * s}"),
             verify(2 * s, "/", 2, s)]
    return task(prompt, steps, 2 * s)


def geometry_square(rng: random.Random, large: bool) -> Task:
    name, thing = rng.choice(NAMES), rng.choice(SQUARES)
    side = pick(rng, large, (2, 12), (26, 999))
    prompt = f"{name}'s square {thing} has sides of {side} cm. What is its perimeter in cm?"
    steps = [("compute", f"Perimeter: {side} * 4 = {4 * side}"), verify(4 * side, "/", 4, side)]
    return task(prompt, steps, 4 * side)


def geometry_fence_cost(rng: random.Random, large: bool) -> Task:
    name, area = rng.choice(NAMES), rng.choice(AREAS)
    length, width, cost = rng.randint(2, 20), rng.randint(2, 15), rng.randint(2, 9)
    s = length + width
    p = 2 * s
    prompt = (f"{name}'s {area} is {length} m by {width} m. A fence costs {cost} dollars per m. "
              "How many dollars does a fence around it cost?")
    steps = [("compute", f"Half: {length} + {width} = {s}"), ("compute", f"Perimeter: {s} * 2 = {p}"),
             ("compute", f"Cost: {p} * {cost} = {p * cost}"), verify(p * cost, "/", cost, p)]
    return task(prompt, steps, p * cost)



CATEGORIES = (
    Category("shopping", "word_problem", templates_for(
        "shopping", [(shopping_each_plus_one, "medium"), (shopping_two_kinds, "medium"),
                     (shopping_unit_price, "easy")], [shopping_coupon])),
    Category("change", "word_problem", templates_for(
        "change", [(change_note, "medium"), (change_single, "easy"), (change_left, "medium")],
        [change_two_notes])),
    Category("distance", "word_problem", templates_for(
        "distance", [(distance_one_leg, "easy"), (distance_two_legs, "medium"), (distance_speed, "easy")],
        [distance_duration])),
    Category("sharing", "word_problem", templates_for(
        "sharing", [(sharing_leftover, "medium"), (sharing_each, "medium"), (sharing_exact, "easy")],
        [sharing_boxes_needed])),
    Category("ages", "word_problem", templates_for(
        "ages", [(ages_times_later, "medium"), (ages_younger_sum, "medium"), (ages_older_past, "medium")],
        [ages_until])),
    Category("units", "word_problem", templates_for(
        "units", [(units_hours_minutes, "medium"), (units_meters_cm, "medium"), (units_weeks_days, "medium"),
                  (units_kg_g, "medium")], [units_seconds])),
    Category("rates", "word_problem", templates_for(
        "rates", [(rates_savings, "medium"), (rates_machine, "easy"), (rates_reading, "easy")],
        [rates_together])),
    Category("geometry", "word_problem", templates_for(
        "geometry", [(geometry_area, "easy"), (geometry_perimeter, "medium"), (geometry_square, "easy")],
        [geometry_fence_cost])),
)
