"""Dependency probes used by /api/health and /api/redi/health (the llm_judge's grader, whichever mode).

The answers are for anyone (load balancers, CI): they say which dependency is down, never its address
or the driver's message (those go to the log).
"""

import json
import logging
import os
import time
import urllib.error
import urllib.request

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from apps.core.checks import llm_judge_mode
from apps.core.readcache import CACHE_ERRORS
from tunixrt.celery import app as celery_app

REDI_CACHE_KEY = "tunixrt:redi-health"
logger = logging.getLogger(__name__)


def _timed(probe) -> dict:
    started = time.perf_counter()
    try:
        result = probe()
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is a "down" answer
        logger.warning("health probe %s failed: %s: %s", probe.__name__, type(exc).__name__, exc)
        result = {"ok": False, "error": "unreachable"}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _database_probe() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _broker_probe() -> dict:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return {"ok": True, "mode": "in-process"}
    url = settings.CELERY_BROKER_URL
    timeout = settings.BROKER_HEALTH_TIMEOUT_S
    if url.startswith("filesystem://"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        return {"ok": os.access(folder, os.W_OK), "mode": "filesystem", "pending_messages": len(os.listdir(folder))}
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    else:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    return {"ok": True, "mode": "broker"}


def _cache_probe() -> dict:
    if not settings.CACHE_URL:
        return {"ok": True, "mode": "per-process"}
    cache.get("tunixrt:health-probe")
    return {"ok": True, "mode": "shared"}


def system_health() -> dict:
    """`ok`; `degraded` when only the cache is down (requests fall back to the database);
    `unavailable` when the database or the broker is."""
    checks = {"database": _timed(_database_probe), "broker": _timed(_broker_probe), "cache": _timed(_cache_probe)}
    if not (checks["database"]["ok"] and checks["broker"]["ok"]):
        status = "unavailable"
    else:
        status = "ok" if checks["cache"]["ok"] else "degraded"
    return {"status": status, "checks": checks}


def _redi_probe() -> dict:
    url = settings.REDIAI_BASE_URL.rstrip("/") + "/health"
    with urllib.request.urlopen(url, timeout=settings.BROKER_HEALTH_TIMEOUT_S) as response:  # noqa: S310
        body = response.read(64 * 1024)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    return {"ok": True, "upstream": payload}


def _openai_probe() -> dict:
    """`GET {LLM_JUDGE_BASE_URL}/models` answers; whether it lists LLM_JUDGE_MODEL is told, not required
    (a server may route names, such as aliases, that it does not list)."""
    headers = {"Authorization": f"Bearer {settings.LLM_JUDGE_API_KEY}"} if settings.LLM_JUDGE_API_KEY else {}
    request = urllib.request.Request(settings.LLM_JUDGE_BASE_URL.rstrip("/") + "/models", headers=headers)
    with urllib.request.urlopen(request, timeout=settings.BROKER_HEALTH_TIMEOUT_S) as response:  # noqa: S310
        body = response.read(256 * 1024)
    try:
        listed = [model.get("id") for model in json.loads(body)["data"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        listed = None
    return {"ok": True, "model_listed": None if listed is None else settings.LLM_JUDGE_MODEL in listed}


def redi_health() -> dict:
    """The llm_judge's grader (apps.core.checks.llm_judge_mode): mock mode is always healthy; rediai and
    openai modes probe their service, cached for REDIAI_HEALTH_TTL_S. The openai answer names the mode and
    model, never the address or the key."""
    mode = llm_judge_mode()
    if mode not in ("rediai", "openai"):
        return {"status": "healthy", "mode": "mock", "cached": False}
    key = REDI_CACHE_KEY if mode == "rediai" else f"{REDI_CACHE_KEY}:openai"
    try:
        cached = cache.get(key)
    except CACHE_ERRORS:
        cached = None
    if cached is not None:
        return {**cached, "cached": True}
    result = _redi_result() if mode == "rediai" else _openai_result()
    try:
        cache.set(key, result, settings.REDIAI_HEALTH_TTL_S)
    except CACHE_ERRORS:
        pass  # the next call probes again
    return {**result, "cached": False}


def _redi_result() -> dict:
    probe = _timed(_redi_probe)
    return {"status": "healthy" if probe["ok"] else "down", "mode": "real", "url": settings.REDIAI_BASE_URL,
            "probe": probe}


def _openai_result() -> dict:
    probe = _timed(_openai_probe)
    return {"status": "healthy" if probe["ok"] else "down", "mode": "openai", "model": settings.LLM_JUDGE_MODEL,
            "probe": probe}
