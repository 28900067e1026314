"""The judge set of an evaluation: which judges score it, at which versions (SPEC §5).

`answer_exact` and `format` always run (the primary score and format compliance come from them);
`reasoning_checks` and `llm_judge` are optional. The deterministic judges live in `training.judges`
(shared with the CLI and the notebook); `llm_judge` lives here because it calls a service.

llm_judge sends a rubric prompt (stored here; its sha256 is recorded with every result) to the grader
LLM_JUDGE_MODE names (unset: REDIAI_MODE decides, real → rediai; see apps.core.checks.llm_judge_mode):

- `mock` (the default, for tests and demos): the verdict is a deterministic function of the deterministic
  judges, and every result says `"mode": "mock"`, so a mock score can never pass for a real one.
- `rediai`: `POST {REDIAI_BASE_URL}/generate` as `{"prompt", "max_tokens", "temperature": 0}`; the reply's
  text (`text`, `response`, `output`, `generated_text` or `completion`) holds the verdict. A timeout is
  retried once. Judge sets and results of this mode say `"mode": "real"`, the name it had before the
  openai mode, so their judge_key (and so their ranking) is unchanged.
- `openai`: any OpenAI-compatible `POST {LLM_JUDGE_BASE_URL}/chat/completions` with LLM_JUDGE_MODEL, the
  rubric as the one user message, temperature 0 and seed 0; `choices[0].message.content` holds the verdict.
  Timeouts, refused connections, 429 and 5xx are retried LLM_JUDGE_RETRIES times; another 4xx is not.
  The model is part of the judge_key, and every result records the reply's `model` and
  `system_fingerprint` (`judge_model`, `judge_fingerprint`). LLM_JUDGE_API_KEY is sent as the bearer token
  and appears in no result.

A verdict is a JSON object `{"score": 0..1, "verdict": "...", "reason": "..."}` (parse_verdict). A failure
is stored as the item's result (`"score": None`, an `error` code and a short `message`), never as a score.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import time
import urllib.error
import urllib.request

from django.conf import settings

from apps.core.checks import llm_judge_mode
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
_REPLY_LIMIT = 256 * 1024
# What each mode is called in stored judge sets and results ("real" predates the openai mode).
_STORED_MODE = {"mock": "mock", "rediai": "real", "openai": "openai"}
_BACKOFF_S = 0.5  # doubled per retry, capped at _BACKOFF_MAX_S: a busy server gets a moment, an item no more
_BACKOFF_MAX_S = 4.0
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
    return [_llm_judge_entry() if name == "llm_judge" else {"name": name, "version": JUDGE_VERSIONS[name]}
            for name in chosen]


def _llm_judge_entry() -> dict:
    mode = llm_judge_mode()
    entry = {"name": "llm_judge", "version": LLM_JUDGE_VERSION, "mode": _STORED_MODE.get(mode, mode),
             "rubric_sha256": RUBRIC_HASH}
    if mode == "openai":
        entry["model"] = settings.LLM_JUDGE_MODEL
    return entry


def judge_key(judges: list[dict]) -> str:
    """Evaluations rank together only when this string is equal (same judges, versions, llm mode and, for
    openai, model). Mock and real keys are what they were before the openai mode."""
    parts = []
    for judge in judges:
        part = f"{judge['name']}@{judge['version']}"
        if judge["name"] == "llm_judge":
            model = f":{_model_tag(judge.get('model') or '')}" if judge["mode"] == "openai" else ""
            part += f":{judge['mode']}{model}:{judge['rubric_sha256'][:12]}"
        parts.append(part)
    return "+".join(parts)


def _model_tag(model: str) -> str:
    # judge_key is a 200-character column: a long model name is cut, and kept distinct by its hash.
    if len(model) <= 64:
        return model
    return f"{model[:40]}~{hashlib.sha256(model.encode('utf-8')).hexdigest()[:12]}"


def llm_judge(item: dict, output: str, scored: dict) -> dict:
    """One item's llm_judge result; `scored` holds the deterministic judges' results for mock mode."""
    mode = llm_judge_mode()
    if mode not in ("rediai", "openai"):
        return _mock(scored)
    prompt = RUBRIC.format(prompt=item["prompt"], expected=item["expected_answer"], output=output)
    if mode == "openai":
        return _openai_judge(prompt)
    return _rediai_judge(prompt)


def _rediai_judge(prompt: str) -> dict:
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


class _Failure(Exception):
    def __init__(self, code: str, message: str, *, retry: bool):
        super().__init__(message)
        self.code, self.message, self.retry = code, message, retry


def _openai_judge(prompt: str) -> dict:
    started = time.perf_counter()
    try:
        reply = _with_retries(lambda: _openai_call(prompt))
    except _Failure as failure:
        return _openai_result(None, score=None, error=failure.code, message=_redacted(failure.message))
    text = _reply_content(reply)
    verdict = parse_verdict(text) if text is not None else None
    if verdict is None:
        shown = text if text is not None else "the reply has no choices[0].message.content string"
        return _openai_result(reply, score=None, error="malformed_reply", message=_redacted(shown[:300]))
    return _openai_result(reply, latency_s=round(time.perf_counter() - started, 3), **verdict)


def _openai_result(reply: dict | None, **fields) -> dict:
    reply = reply or {}
    model, fingerprint = reply.get("model"), reply.get("system_fingerprint")
    return {"mode": "openai", "rubric_sha256": RUBRIC_HASH, "judge_version": LLM_JUDGE_VERSION,
            "judge_model": model[:200] if isinstance(model, str) and model else settings.LLM_JUDGE_MODEL,
            "judge_fingerprint": fingerprint[:200] if isinstance(fingerprint, str) else None, **fields}


def _with_retries(call):
    attempt = 0
    while True:
        try:
            return call()
        except _Failure as failure:
            if not failure.retry or attempt >= settings.LLM_JUDGE_RETRIES:
                raise
        time.sleep(min(_BACKOFF_S * 2 ** attempt, _BACKOFF_MAX_S))
        attempt += 1


def _openai_call(prompt: str) -> dict:
    url = settings.LLM_JUDGE_BASE_URL.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": settings.LLM_JUDGE_MODEL, "messages": [{"role": "user", "content": prompt}],
                       "temperature": 0, "max_tokens": settings.LLM_JUDGE_MAX_TOKENS, "seed": 0}).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers=_openai_headers(), method="POST")
    timeout = settings.LLM_JUDGE_TIMEOUT_S
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the URL is http(s) (E006)
            raw = response.read(_REPLY_LIMIT + 1)
    except urllib.error.HTTPError as exc:
        raise _Failure(f"http_{exc.code}", _http_error_message(exc), retry=exc.code == 429 or exc.code >= 500) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # A connect timeout arrives wrapped in URLError, a read timeout bare.
        if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
            raise _Failure("timeout", f"no reply within {timeout}s", retry=True) from None
        raise _Failure("unavailable", f"{type(exc).__name__}: {exc}"[:300],
                       retry=not isinstance(exc, ValueError)) from None
    return _reply_json(raw)


def _openai_headers() -> dict:
    # The one place the API key goes (apps.core.health builds the same for its probe).
    headers = {"Content-Type": "application/json"}
    if settings.LLM_JUDGE_API_KEY:
        headers["Authorization"] = f"Bearer {settings.LLM_JUDGE_API_KEY}"
    return headers


def _reply_json(raw: bytes) -> dict:
    if len(raw) > _REPLY_LIMIT:
        raise _Failure("malformed_reply", f"the reply is larger than {_REPLY_LIMIT // 1024} KiB", retry=False)
    try:
        payload = json.loads(raw)
    except ValueError:
        raise _Failure("malformed_reply", raw[:300].decode("utf-8", "replace"), retry=False) from None
    if not isinstance(payload, dict):
        raise _Failure("malformed_reply", "the reply is not a JSON object", retry=False)
    return payload


def _reply_content(reply: dict) -> str | None:
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def _http_error_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(2048).decode("utf-8", "replace")
    except OSError:
        body = ""
    finally:
        exc.close()
    try:
        detail = json.loads(body)["error"]["message"]  # OpenAI's error shape
    except (ValueError, KeyError, TypeError):
        detail = body
    return f"HTTP {exc.code}: {detail}"[:300]


def _redacted(text: str) -> str:
    # Some servers echo a rejected key in their error text; it must not reach a stored result.
    key = settings.LLM_JUDGE_API_KEY
    return text.replace(key, "[redacted]") if key else text


def _call(prompt: str) -> str:
    url = settings.REDIAI_BASE_URL.rstrip("/") + "/generate"
    body = json.dumps({"prompt": prompt, "max_tokens": 256, "temperature": 0}).encode("utf-8")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=settings.REDIAI_TIMEOUT_S) as response:  # noqa: S310
        payload = json.loads(response.read(_REPLY_LIMIT))
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
