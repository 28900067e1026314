"""Dependency probes used by /api/health and /api/redi/health.

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


def redi_health() -> dict:
    """Mock mode is always healthy; real mode probes the service, cached for REDIAI_HEALTH_TTL_S."""
    if settings.REDIAI_MODE != "real":
        return {"status": "healthy", "mode": "mock", "cached": False}
    try:
        cached = cache.get(REDI_CACHE_KEY)
    except CACHE_ERRORS:
        cached = None
    if cached is not None:
        return {**cached, "cached": True}
    probe = _timed(_redi_probe)
    result = {
        "status": "healthy" if probe["ok"] else "down",
        "mode": "real",
        "url": settings.REDIAI_BASE_URL,
        "probe": probe,
    }
    try:
        cache.set(REDI_CACHE_KEY, result, settings.REDIAI_HEALTH_TTL_S)
    except CACHE_ERRORS:
        pass  # the next call probes again
    return {**result, "cached": False}
