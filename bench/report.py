"""One shape for what every benchmark reports, so `python -m bench` can put it all in one table.

A benchmark prints one JSON object (its details, free-form) with a "figures" list of `figure(...)`
entries: the number an issue names, its unit, its target, and the comparison measured in the same run.
A noisy figure is measured several times (`repeat`) and reported as the median with its range.
No Django and no JAX here: `bench_training` runs on machines that have neither installed together.
"""

from __future__ import annotations

import operator
import os
import statistics
import time
from collections.abc import Callable

QUICK = os.environ.get("QUICK") == "1"
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def quick(full, small):
    """`small` in quick mode (`make test` checks that the benchmark runs, not what it measures)."""
    return small if QUICK else full


def repeat(times: int, measure: Callable[[], float]) -> list[float]:
    """`measure()` run `times` times (at least once): the samples of a noisy figure."""
    return [measure() for _ in range(max(1, times))]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def figure(issue: str, name: str, value: float | list[float] | None, unit: str, *,
           target: tuple[str, float] | None = None, comparison: dict | None = None, note: str = "") -> dict:
    """One reported figure. `value` is a number, or the samples of a repeated measurement (the median is
    the figure, min and max its range). `target` is (operator, bound), e.g. ("<=", 60). `comparison` is
    what the figure is measured against in the same run: {"what", "value", "unit"} (+ "quoted": True
    for an anchor quoted from elsewhere rather than measured here)."""
    entry: dict = {"issue": issue, "name": name, "unit": unit}
    if isinstance(value, list):
        entry["samples"] = [round(v, 4) for v in value]
        entry["range"] = [round(min(value), 4), round(max(value), 4)]
        value = statistics.median(value)
    entry["value"] = None if value is None else round(value, 4)
    if target is not None:
        op, bound = target
        entry["target"] = f"{op} {bound:g}"
        entry["met"] = None if value is None or QUICK else bool(_OPS[op](value, bound))
    if comparison is not None:
        entry["comparison"] = comparison
    if note:
        entry["note"] = note
    return entry


def compare(what: str, value: float | list[float], unit: str, *, quoted: bool = False) -> dict:
    """A comparison for `figure`; repeated samples are summarised like a figure's."""
    entry: dict = {"what": what, "unit": unit}
    if isinstance(value, list):
        entry["range"] = [round(min(value), 4), round(max(value), 4)]
        value = statistics.median(value)
    entry["value"] = round(value, 4)
    if quoted:
        entry["quoted"] = True
    return entry
