"""Test builders for traces, importable by any app's tests (not only through pytest's conftest)."""

import itertools

_counter = itertools.count()


def make_trace_body(**overrides) -> dict:
    """A valid SPEC §2.1 trace body with unique content on every call."""
    n = next(_counter)
    body = {
        "trace_version": "1.0",
        "prompt": f"Tom has {n} apples and buys 7 more. How many apples does he have?",
        "steps": [
            {"i": 0, "type": "parse", "content": f"Tom starts with {n} apples and buys 7."},
            {"i": 1, "type": "compute", "content": f"{n} + 7 = {n + 7}"},
            {"i": 2, "type": "verify", "content": f"Check: {n + 7} - 7 = {n}"},
        ],
        "final_answer": str(n + 7),
        "meta": {"source": "test", "category": "arithmetic", "tags": ["unit"]},
    }
    body.update(overrides)
    return body
