"""Deterministic judges (SPEC §5): answer_exact, format and reasoning_checks.

Nothing here is random and nothing here imports Django: the evaluation service, the trace scorer
and the notebook all call these functions, so a prediction scores the same everywhere.

Normalisation rules used by `answer_exact` (applied to both the prediction and the expectation):

- surrounding whitespace is dropped, runs of whitespace become one space, case is folded;
- one pair of wrapping quotes or backticks and one trailing full stop are dropped;
- a number is rewritten in one canonical form: thousands separators go (`1,000` -> `1000`), a
  leading `+` and leading zeros go (`+4`, `004` -> `4`), trailing decimal zeros go (`3.50` -> `3.5`,
  `4.0` -> `4`), `-0` is `0`, and the Unicode minus is an ASCII hyphen;
- a fraction `p/q` is reduced (`16/34` -> `8/17`, `4/2` -> `2`), but a fraction and a decimal are
  never equal (`1/2` != `0.5`): the generators ask for exact fractions (High Card Duel) and a
  decimal may be a rounded value (`0.47` for `8/17`), so accepting it would reward a wrong form;
- units and other words are NOT stripped (`150 km` != `150`): every expected answer is a bare value
  and the training data teaches models to answer bare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

JUDGE_VERSIONS = {"answer_exact": "1", "format": "1", "reasoning_checks": "1"}

_TAG = r"</?(?:reasoning|answer)>"
# A block body holds no reasoning/answer tag and at least one visible character. Leading
# whitespace is consumed before the first visible character, so the match stays linear in time.
_BODY = rf"\s*(?!{_TAG})\S(?:(?!{_TAG}).)*"
FORMAT_RE = re.compile(
    rf"\s*<reasoning>(?P<reasoning>{_BODY})</reasoning>\s*"
    rf"<answer>(?P<answer>{_BODY})</answer>\s*(?:<end_of_turn>\s*)?",
    re.DOTALL,
)
_ANSWER_BLOCK_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_REASONING_BLOCK_RE = re.compile(r"<reasoning>(.*?)</reasoning>", re.DOTALL)


def format_ok(output: str) -> bool:
    """True when the whole output is `<reasoning>…</reasoning><answer>…</answer>` (+ end-of-turn)."""
    return FORMAT_RE.fullmatch(output) is not None


def extract_answer(output: str) -> str | None:
    """Stripped text of the last closed `<answer>…</answer>` block, or None when there is none."""
    blocks = _ANSWER_BLOCK_RE.findall(output)
    return blocks[-1].strip() if blocks else None


def extract_reasoning(output: str) -> str | None:
    """All closed `<reasoning>` blocks joined by newlines, or None when there is none."""
    blocks = _REASONING_BLOCK_RE.findall(output)
    return "\n".join(blocks) if blocks else None


# --- answer normalisation -------------------------------------------------------------------

_NUMBER_RE = re.compile(r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)")
_FRACTION_RE = re.compile(r"([+-]?\d+)\s*/\s*([+-]?\d+)")
_WRAPPING_QUOTES = ("''", '""', "``")


def _canonical_number(value: Decimal | Fraction) -> str:
    if isinstance(value, Fraction) and value.denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    if value == int(value):
        return str(int(value))
    # normalize() drops trailing zeros; "f" keeps it out of exponent notation (0.00001, not 1E-5).
    return format(value.normalize(), "f")


def _normalize_number(text: str) -> str | None:
    if _NUMBER_RE.fullmatch(text):
        return _canonical_number(Decimal(text.replace(",", "")))
    fraction = _FRACTION_RE.fullmatch(text)
    if fraction and int(fraction.group(2)) != 0:
        return _canonical_number(Fraction(int(fraction.group(1)), int(fraction.group(2))))
    return None


def normalize_answer(s: str) -> str:
    """Canonical form of an answer for exact comparison; the rules are in the module docstring."""
    text = " ".join(s.split()).casefold().replace("\u2212", "-")
    if len(text) >= 2 and text[0] + text[-1] in _WRAPPING_QUOTES:
        text = text[1:-1].strip()
    if len(text) >= 2 and text.endswith("."):
        text = text[:-1].rstrip()
    number = _normalize_number(text)
    return number if number is not None else text


def answer_exact(output: str, expected: str) -> bool:
    """The extracted answer equals the expected one after normalisation; no answer block -> False."""
    answer = extract_answer(output)
    return answer is not None and normalize_answer(answer) == normalize_answer(expected)


# --- arithmetic claims ----------------------------------------------------------------------

_NUM = r"[+\-\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_OP = r"(?:\s*[+\-\u2212*\u00d7/\u00f7]\s*|\s+x\s+)"
_EXPR = rf"{_NUM}(?:{_OP}{_NUM})*"
# A claim is a chain of expressions joined by `=`, optionally ending in "remainder r" after a
# division. The look-arounds keep it from starting or ending inside a word or a longer number,
# while a sentence's full stop after the last number is fine.
_CLAIM_RE = re.compile(
    rf"(?<![\w.,])(?P<body>{_EXPR}(?:\s*=\s*{_EXPR})+)"
    rf"(?:\s+(?:remainder|rem|r)\.?\s*(?P<remainder>\d+))?(?!\w|[.,]\d)"
)
_NUM_RE = re.compile(_NUM)
_OP_RE = re.compile(_OP)
_MUL_OPS = {"*", "\u00d7", "x"}
_DIV_OPS = {"/", "\u00f7"}


@dataclass(frozen=True)
class Claim:
    text: str
    holds: bool


def _number(text: str) -> Fraction:
    return Fraction(Decimal(text.replace(",", "").replace("\u2212", "-")))


def _tokens(expression: str) -> tuple[list[Fraction], list[str]]:
    """Numbers and the operators between them, read left to right exactly as _EXPR matched them."""
    expression = expression.strip()
    first = _NUM_RE.match(expression)
    numbers, ops, pos = [_number(first.group())], [], first.end()
    while pos < len(expression):
        op = _OP_RE.match(expression, pos)
        number = _NUM_RE.match(expression, op.end())
        ops.append(op.group().strip().replace("\u2212", "-"))
        numbers.append(_number(number.group()))
        pos = number.end()
    return numbers, ops


def _evaluate(numbers: list[Fraction], ops: list[str]) -> Fraction | None:
    """Value with the usual precedence (* and / before + and -); None on division by zero."""
    terms, signs, current = [], ["+"], numbers[0]
    for op, number in zip(ops, numbers[1:], strict=True):
        if op in _MUL_OPS:
            current *= number
        elif op in _DIV_OPS:
            if number == 0:
                return None
            current /= number
        else:
            terms.append(current)
            signs.append(op)
            current = number
    terms.append(current)
    return sum((t if s == "+" else -t for s, t in zip(signs, terms, strict=True)), Fraction(0))


def _decimals(literal: str) -> int:
    return len(literal.split(".")[1]) if "." in literal else 0


def _segment_matches(reference: Fraction, numbers: list[Fraction], ops: list[str], literal: str) -> bool:
    if ops:
        return _evaluate(numbers, ops) == reference
    places = _decimals(literal)
    # A decimal literal is read as a rounded value: it must be the reference rounded to its places.
    if places:
        return abs(numbers[0] - reference) <= Fraction(1, 2 * 10**places)
    return numbers[0] == reference


def _remainder_holds(segments: list[tuple[list[Fraction], list[str]]], remainder: int) -> bool:
    if len(segments) != 2:
        return False
    (left_numbers, left_ops), (right_numbers, right_ops) = segments
    if len(left_ops) != 1 or left_ops[0] not in _DIV_OPS or right_ops:
        return False
    dividend, divisor = left_numbers
    quotient = right_numbers[0]
    return divisor != 0 and 0 <= remainder < abs(divisor) and divisor * quotient + remainder == dividend


def _claim_holds(body: str, remainder: str | None) -> bool:
    literals = [part.strip() for part in body.split("=")]
    segments = [_tokens(part) for part in literals]
    if remainder is not None:
        return _remainder_holds(segments, int(remainder))
    expressions = [_evaluate(numbers, ops) for numbers, ops in segments if ops]
    if any(value is None for value in expressions):
        return False
    reference = expressions[0]
    return all(
        _segment_matches(reference, numbers, ops, literal)
        for (numbers, ops), literal in zip(segments, literals, strict=True)
    )


def find_claims(text: str) -> list[Claim]:
    """Every arithmetic claim (`a op b = c`, chains allowed) in `text`, each with its truth."""
    claims = []
    for match in _CLAIM_RE.finditer(text):
        body = match.group("body")
        if not any(_tokens(part)[1] for part in body.split("=")):
            continue  # `19 = 19` states no arithmetic
        claims.append(Claim(match.group(0), _claim_holds(body, match.group("remainder"))))
    return claims


def check_claims(text: str) -> dict:
    """Claim counts for raw text: {"claims", "true", "false": [claim texts], "ok"}."""
    claims = find_claims(text)
    false = [claim.text for claim in claims if not claim.holds]
    return {"claims": len(claims), "true": len(claims) - len(false), "false": false, "ok": not false}


def reasoning_checks(output: str) -> dict:
    """Arithmetic claims inside `<reasoning>` are all true.

    Returns {"claims", "true", "false", "ok", "has_reasoning"}. `ok` is True when no claim is false
    (a reasoning without arithmetic is fine) and False when the output has no reasoning block.
    """
    reasoning = extract_reasoning(output)
    if reasoning is None:
        return {"claims": 0, "true": 0, "false": [], "ok": False, "has_reasoning": False}
    return {**check_claims(reasoning), "has_reasoning": True}
