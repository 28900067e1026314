"""Scratchpad steps for dev-reasoning-v2: arithmetic written out one column at a time.

A small model cannot add 478 + 356 in one step, but it can add two digits and a carry. So a sum
with a carry, a difference with a borrow or a product beyond the times table is worked in columns
from the ones up, each line computable from the line above:

    478 + 356:
    ones 8 + 6 = 14 so far 4 carry 1
    tens 7 + 5 + 1 = 13 so far 34 carry 1
    hundreds 4 + 3 + 1 = 8 so far 834

"so far" grows by one digit per line (the new digit in front of the previous "so far"), so the
result is copied, never assembled from scattered digits. Every sum and difference with a number of
several digits is worked this way, with or without a carry: a small model trained on v1 got
`360 + 16 = 336` wrong as often as sums with carries, so aligning the digits is the hard part.
Products of two numbers of several digits are split into partial products by the other factor's
digits, then added. Numbers are compared digit by digit from the left. Punctuation is left out of
the column lines because every mark is a token. Every `a op b = c` written here is true
(reasoning_checks).
"""

from __future__ import annotations

import re

PLACES = ("ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands", "millions")
_CLAIM = re.compile(r"^(?:(?P<label>[^:]+): )?(?P<a>\d+) (?P<op>[-+*/]) (?P<b>\d+) = (?P<c>\d+)$")


def place(index: int) -> str:
    return PLACES[index] if index < len(PLACES) else f"digit {index + 1}"


def digit(number: int, index: int) -> int:
    """The digit of `number` worth 10**index (0 beyond its length)."""
    return number // 10**index % 10


def _carry_note(carry: int, word: str = "carry") -> str:
    return f" {word} {carry}" if carry else ""


def _carry_columns(header: str, width: int, column) -> list[str]:
    """Columns from the ones up: `column(index)` gives that column's value and its terms, the carry
    from the column before is added to both, and a carry left over gets a line of its own."""
    lines, carry, so_far = [header], 0, ""
    for index in range(width):
        value, terms = column(index)
        total = value + carry
        terms += f" + {carry}" if carry else ""
        so_far, carry = str(total % 10) + so_far, total // 10
        lines.append(f"{place(index)} {terms} = {total} so far {so_far}{_carry_note(carry)}")
    if carry:
        lines.append(f"{place(width)} carry {carry} so far {carry}{so_far}")
    return lines


def add_columns(a: int, b: int) -> list[str]:
    return _carry_columns(f"{a} + {b}:", len(str(max(a, b))), lambda index: (
        digit(a, index) + digit(b, index), f"{digit(a, index)} + {digit(b, index)}"))


def subtract_columns(a: int, b: int) -> list[str]:
    """a - b for a >= b; a borrowed ten shows as `10 + x - ...`, the borrow as `- 1` one column on."""
    lines, borrow, so_far = [f"{a} - {b}:"], 0, ""
    for index in range(len(str(a))):
        x, y = digit(a, index), digit(b, index)
        terms = f"{x}" + (f" - {borrow}" if borrow else "") + f" - {y}"
        value = x - borrow - y
        borrow = int(value < 0)
        if borrow:
            value, terms = value + 10, f"10 + {terms}"
        so_far = str(value) + so_far
        lines.append(f"{place(index)} {terms} = {value} so far {so_far}{_carry_note(borrow, 'borrow')}")
    return lines


def multiply_columns(a: int, d: int) -> list[str]:
    """a * d for a one-digit d: each digit of a times d, plus the carry."""
    return _carry_columns(f"{a} * {d}:", len(str(a)), lambda index: (digit(a, index) * d, f"{digit(a, index)} * {d}"))


def _strip_zeros(number: int) -> tuple[int, int]:
    zeros = 0
    while number and number % 10 == 0:
        number, zeros = number // 10, zeros + 1
    return number, zeros


def multiply_steps(a: int, b: int) -> list[str]:
    """Lines that work out a * b before it is stated: trailing zeros are set aside (70 * 8 is
    7 * 8 = 56 and a zero), then the times table, columns or partial products."""
    core_a, core_b = _strip_zeros(a)[0], _strip_zeros(b)[0]
    big, small = max(core_a, core_b), min(core_a, core_b)
    if small >= 10:
        return partial_products(big, small)
    if big >= 10:
        return multiply_columns(big, small)
    if small == 1 or (core_a, core_b) == (a, b):
        return []  # a times-table fact, or only zeros to append
    return [f"{core_a} * {core_b} = {core_a * core_b}"]


def partial_products(a: int, b: int) -> list[str]:
    """a * b for a b of several digits: a times each digit of b (in columns), shifted by the digit's
    place, then the partial products summed."""
    factors = [digit(b, index) * 10**index for index in range(len(str(b))) if digit(b, index)]
    lines = [f"{a} * {b} = " + " + ".join(f"{a} * {factor}" for factor in factors)]
    total, worked = 0, {1}  # a times 1 needs no columns, nor a digit already worked out
    for factor in factors:
        core = _strip_zeros(factor)[0]
        lines += [] if core in worked else multiply_columns(a, core)
        worked.add(core)
        lines.append(f"{a} * {factor} = {a * factor}")
        if total:
            lines += sum_steps(total, a * factor)
        total += a * factor
    return lines


def sum_steps(a: int, b: int) -> list[str]:
    """a + b stated, after its columns unless both are one digit."""
    return [*(add_columns(a, b) if max(a, b) >= 10 else []), f"{a} + {b} = {a + b}"]


def work_for_claim(a: int, op: str, b: int) -> list[str]:
    """The scratchpad lines that come before a stated `a op b = c`; none when it is a lookup
    (one digit plus or minus one digit, the times table)."""
    if op == "+" and max(a, b) >= 10 and min(a, b) > 0:
        return add_columns(a, b)
    if op == "-" and a >= 10 and 0 < b <= a:
        return subtract_columns(a, b)
    if op == "*":
        return multiply_steps(a, b)
    if op == "/" and 0 < b < 10 and a % b == 0:
        return _division_without_zeros(a, b)
    return []


def _division_without_zeros(a: int, b: int) -> list[str]:
    """560 / 8: the zeros the quotient shares with the dividend are set aside (56 / 8 = 7)."""
    quotient = a // b
    zeros = min(_strip_zeros(a)[1], _strip_zeros(quotient)[1])
    if not zeros:
        return []
    return [f"{a // 10**zeros} / {b} = {quotient // 10**zeros}"]


def expand_step(kind: str, content: str) -> list[tuple[str, str]]:
    """A v1 step with its scratchpad in front: `Cost: 4 * 13 = 52` becomes the columns of 13 * 4
    and then the step itself. Only `compute` steps with one two-operand claim are expanded."""
    match = _CLAIM.match(content)
    if kind != "compute" or match is None:
        return [(kind, content)]
    a, op, b = int(match["a"]), match["op"], int(match["b"])
    return [("compute", line) for line in work_for_claim(a, op, b)] + [(kind, content)]


def _digits(number: int) -> str:
    return f"{len(str(number))} digit{'s' * (number >= 10)}"


def compare_digits(a: int, b: int) -> tuple[list[str], int]:
    """Lines that compare a and b (a != b) digit by digit from the left, and the larger one."""
    if len(str(a)) != len(str(b)):
        larger = a if len(str(a)) > len(str(b)) else b
        lines = [f"{a} has {_digits(a)} and {b} has {_digits(b)}"]
        return lines + [f"more digits, so {larger} is larger"], larger
    lines = [f"{a} and {b} both have {_digits(a)}"]
    for index in reversed(range(len(str(a)))):
        x, y = digit(a, index), digit(b, index)
        if x == y:
            lines.append(f"{place(index)}: {x} and {y} are the same")
            continue
        relation = "more" if x > y else "less"
        larger = a if x > y else b
        return lines + [f"{place(index)}: {x} is {relation} than {y}, so {larger} is larger"], larger
    raise ValueError("compare_digits needs two different numbers")
