"""Structural trace score, 0–100 (SPEC §2.3), with the details that explain it.

It does not judge truth in general; it rewards the shape a useful training trace has: several
steps of sensible length, a short final answer, arithmetic claims that are true, and an answer
that the reasoning actually arrives at.
"""

from training.judges import reasoning_checks
from training.render import render_response

SCORER = "structural"
SCORER_VERSION = "1"
MIN_STEP_CHARS = 8
MAX_STEP_CHARS = 500
MAX_SHORT_ANSWER_CHARS = 200


def _step_count_points(count: int) -> float:
    if count >= 3:
        return 25.0
    return {0: 0.0, 1: 10.0, 2: 18.0}[count]


def _step_length_points(steps: list[dict]) -> float:
    sensible = sum(MIN_STEP_CHARS <= len(s["content"]) <= MAX_STEP_CHARS for s in steps)
    return 20.0 * sensible / len(steps) if steps else 0.0


def _answer_points(answer: str) -> float:
    answer = answer.strip()
    if not answer:
        return 0.0
    return 20.0 if len(answer) <= MAX_SHORT_ANSWER_CHARS else 10.0


def _answer_grounded(steps: list[dict], answer: str) -> bool:
    answer = answer.strip().lower()
    return bool(answer) and any(answer in s["content"].lower() for s in steps)


def structural_score(trace: dict) -> tuple[float, dict]:
    steps, answer = trace["steps"], trace["final_answer"]
    checks = reasoning_checks(render_response(steps, answer))
    claims, true_claims = checks["claims"], checks["true"]
    arithmetic = 25.0 * true_claims / claims if claims else 25.0
    grounded = _answer_grounded(steps, answer)
    details = {
        "step_count": {"value": len(steps), "points": _step_count_points(min(len(steps), 3))},
        "step_length": {
            "sensible_steps": sum(MIN_STEP_CHARS <= len(s["content"]) <= MAX_STEP_CHARS for s in steps),
            "points": round(_step_length_points(steps), 2),
        },
        "answer": {"chars": len(answer.strip()), "points": _answer_points(answer)},
        "arithmetic": {"claims": claims, "true": true_claims, "false": checks["false"],
                       "points": round(arithmetic, 2)},
        "answer_grounded": {"value": grounded, "points": 10.0 if grounded else 0.0},
    }
    total = sum(part["points"] for part in details.values())
    return round(min(100.0, total), 2), details
