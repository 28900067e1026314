"""The judge set of an evaluation: which judges score it, at which versions (SPEC §5).

`answer_exact` and `format` always run (the primary score and format compliance come from them);
`reasoning_checks` and `llm_judge` are optional. The deterministic judges live in `training.judges`
(shared with the CLI and the notebook); `llm_judge` lives here because it calls a service.

llm_judge: a rubric prompt (stored here; its sha256 is recorded with every result) sent to a
RediAI-compatible `POST {REDIAI_BASE_URL}/generate` as `{"prompt", "max_tokens", "temperature": 0}`;
the reply's text (`text`, `response`, `output`, `generated_text` or `completion`) must hold a JSON
object `{"score": 0..1, "verdict": "...", "reason": "..."}`. A timeout is retried once; a failure is
stored as the item's result (`error`) and never as a score. In mock mode (REDIAI_MODE=mock, the
default, for tests and demos) the verdict is a deterministic function of the deterministic judges,
and every result says `"mode": "mock"`, so a mock score can never pass for a real one.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request

from django.conf import settings

from apps.core.errors import Invalid
from training.judges import JUDGE_VERSIONS

LLM_JUDGE_VERSION = "1"
REQUIRED = ("answer_exact", "format")
AVAILABLE = ("answer_exact", "format", "reasoning_checks", "llm_judge")
DEFAULT = ("answer_exact", "format", "reasoning_checks")

RUBRIC = """You grade a model's answer to a question. The model must show its work as
<reasoning>...</reasoning><answer>...</answer>.

Question: {prompt}
Expected answer: {expected}
Model output:
{output}

Judge whether the reasoning is sound and leads to the expected answer. Reply with one JSON object
and nothing else: {{"score": <number from 0 to 1>, "verdict": "correct" | "partially_correct" |
"incorrect", "reason": "<one sentence>"}}"""
RUBRIC_HASH = hashlib.sha256(RUBRIC.encode("utf-8")).hexdigest()
_REPLY_KEYS = ("text", "response", "output", "generated_text", "completion")
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def judge_set(names) -> list[dict]:
    """The judges an evaluation records: names validated, required ones added, versions attached."""
    if names is None:
        names = DEFAULT
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise Invalid({"judges": [f"Must be a list of judge names from {', '.join(AVAILABLE)}."]})
    unknown = sorted(set(names) - set(AVAILABLE))
    if unknown:
        raise Invalid({"judges": [f"Unknown judge(s) {', '.join(unknown)}; available: {', '.join(AVAILABLE)}."]})
    chosen = [name for name in AVAILABLE if name in set(names) | set(REQUIRED)]
    judges = []
    for name in chosen:
        if name == "llm_judge":
            judges.append({"name": name, "version": LLM_JUDGE_VERSION, "mode": settings.REDIAI_MODE,
                           "rubric_sha256": RUBRIC_HASH})
        else:
            judges.append({"name": name, "version": JUDGE_VERSIONS[name]})
    return judges


def judge_key(judges: list[dict]) -> str:
    """Evaluations rank together only when this string is equal (same judges, versions, llm mode)."""
    parts = []
    for judge in judges:
        part = f"{judge['name']}@{judge['version']}"
        if judge["name"] == "llm_judge":
            part += f":{judge['mode']}:{judge['rubric_sha256'][:12]}"
        parts.append(part)
    return "+".join(parts)


def llm_judge(item: dict, output: str, scored: dict) -> dict:
    """One item's llm_judge result; `scored` holds the deterministic judges' results for mock mode."""
    if settings.REDIAI_MODE != "real":
        return _mock(scored)
    prompt = RUBRIC.format(prompt=item["prompt"], expected=item["expected_answer"], output=output)
    started = time.perf_counter()
    for attempt in (1, 2):
        try:
            reply = _call(prompt)
            break
        except TimeoutError:
            if attempt == 2:
                return _failure("timeout", f"no reply within {settings.REDIAI_TIMEOUT_S}s (tried twice)")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return _failure("unavailable", f"{type(exc).__name__}: {exc}"[:300])
    verdict = parse_verdict(reply)
    if verdict is None:
        return _failure("malformed_reply", reply[:300])
    return {"mode": "real", "rubric_sha256": RUBRIC_HASH, "latency_s": round(time.perf_counter() - started, 3),
            **verdict}


def _mock(scored: dict) -> dict:
    # Deterministic and labelled: derived from the deterministic judges, never from chance.
    if scored["correct"] and scored.get("reasoning_ok", True):
        score, verdict = 1.0, "correct"
    elif scored["correct"] or scored["format_ok"]:
        score, verdict = 0.5, "partially_correct"
    else:
        score, verdict = 0.0, "incorrect"
    return {"mode": "mock", "rubric_sha256": RUBRIC_HASH, "score": score, "verdict": verdict,
            "reason": "mock judge: derived from answer_exact, format and reasoning_checks"}


def _failure(code: str, message: str) -> dict:
    return {"mode": "real", "rubric_sha256": RUBRIC_HASH, "score": None, "error": code, "message": message}


def _call(prompt: str) -> str:
    url = settings.REDIAI_BASE_URL.rstrip("/") + "/generate"
    body = json.dumps({"prompt": prompt, "max_tokens": 256, "temperature": 0}).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=settings.REDIAI_TIMEOUT_S) as response:  # noqa: S310
        payload = json.loads(response.read(256 * 1024))
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        payload = payload["data"]
    for key in _REPLY_KEYS:
        if isinstance(payload, dict) and isinstance(payload.get(key), str):
            return payload[key]
    raise ValueError(f"the reply has none of the fields {', '.join(_REPLY_KEYS)}")


def parse_verdict(text: str) -> dict | None:
    """{"score", "verdict", "reason"} from a judge's reply, or None when it is not that."""
    match = _JSON_OBJECT.search(text or "")
    if match is None:
        return None
    try:
        data = json.loads(match.group())
    except ValueError:
        return None
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
        return None
    return {"score": float(score), "verdict": str(data.get("verdict", ""))[:40],
            "reason": str(data.get("reason", ""))[:500]}
