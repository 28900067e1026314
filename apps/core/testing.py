"""Test helpers shared across apps: API clients with keys, a real Celery worker process bound to the
test database, polling."""

import contextlib
import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from apps.core.services import api_key_create
from tunixrt.celery import app as celery_app


@contextlib.contextmanager
def tasks_not_sent():
    """Store job rows without sending any task (no broker message, no eager run); yields the mock that
    records what would have been sent (`call.args[0]` holds the task's arguments)."""
    with mock.patch("celery.app.task.Task.apply_async") as sent:
        yield sent


def key_client(user, scope="write") -> APIClient:
    """An API client authenticated with a fresh key of `user` in `scope`."""
    _, token = api_key_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


class WorkerProcess:
    """A `celery worker` subprocess whose output goes to a file (a pipe nobody reads would fill up
    and stall the worker)."""

    def __init__(self, args: list[str], env: dict, log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                        cwd=settings.BASE_DIR, start_new_session=True)
        self.pid = self.process.pid

    def output(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def kill(self) -> None:
        """SIGKILL the worker and everything it started (trainer processes included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._log.close()


@contextlib.contextmanager
def celery_worker(queues: str = "default", timeout: float = 60.0, env: dict | None = None, purge: bool = True):
    """Run `celery worker` in a subprocess against the current test database and broker.

    The worker is a separate process, so the test must commit its data (transaction=True). It beats
    job heartbeats every second; `env` adds or overrides environment variables (e.g. folders).
    `purge=False` keeps messages already queued (a fresh worker after a crash must see them).
    """
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        raise RuntimeError("a real worker in the tests needs CELERY_BROKER_URL=redis://… (make test sets it)")
    if purge:
        with celery_app.connection_for_write() as conn:
            for queue in queues.split(","):
                conn.default_channel.queue_purge(queue) if _queue_exists(conn, queue) else None
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TUNIXRT_DATASETS_DIR": str(settings.DATASETS_DIR),
        "TUNIXRT_RUNS_DIR": str(settings.RUNS_DIR),
        "JOB_HEARTBEAT_SECONDS": "1",
        "JOB_STALE_SECONDS": "10",
        **(env or {}),
    }
    celery = Path(sys.executable).with_name("celery")
    log_dir = Path(settings.DATA_DIR) / "worker-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = WorkerProcess(
        [str(celery), "-A", "tunixrt", "worker", "-Q", queues, "--pool", "solo", "--concurrency", "1",
         "--without-gossip", "--without-mingle", "--loglevel", "INFO", "-n", f"test-{os.getpid()}-{time.time_ns()}@%h"],
        env, log_dir / f"worker-{time.time_ns()}.log",
    )
    try:
        yield worker
    finally:
        worker.stop(timeout)


def _queue_exists(conn, queue: str) -> bool:
    try:
        conn.default_channel.queue_declare(queue=queue, passive=True)
        return True
    except Exception:  # noqa: BLE001 - absent queue is the normal first-run case
        return False


@contextlib.contextmanager
def s3_emulator(timeout: float = 30.0):
    """moto's S3 server in a subprocess: an emulator, not S3. It proves the S3 code path (s3fs, uploads,
    server-side copies, listings) over HTTP, not S3's latency or consistency. Yields the AWS variables a
    process needs to reach it (the test sets them for itself; worker processes inherit them)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _accepts(port), timeout=timeout, interval=0.2)
        yield {"AWS_ACCESS_KEY_ID": "emulator", "AWS_SECRET_ACCESS_KEY": "emulator", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    finally:
        server.terminate()
        server.wait(timeout=10)


def _accepts(port: int) -> bool:
    with socket.socket() as client:
        return client.connect_ex(("127.0.0.1", port)) == 0


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.25):
    """Poll until predicate() is truthy; returns its value or raises AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


# --- the endpoint permission contract ------------------------------------------------------------

@dataclass(frozen=True)
class Endpoint:
    """One row of an app's permission matrix.

    `path` may hold `{placeholders}` that the matrix fills with the ids of known or unknown objects;
    `body` is a value or a callable taking those ids. `actor` names the persona (a fixture) whose
    key must succeed; `write` endpoints refuse read keys; `has_object` endpoints answer 404 for
    unknown and out-of-scope objects; `open` endpoints need no credentials at all. `outsider` names the
    persona for whom the known objects are out of reach when it is not the contract's usual one (e.g. one
    who holds the write permission but cannot see the object a body names); `format` is how a body is
    sent (`json` or `multipart`).
    """

    method: str
    path: str
    body: object = None
    write: bool = False
    has_object: bool = False
    actor: str = "owner"
    content_type: str | None = None
    open: bool = False
    out_of_scope: bool = True  # False: the out-of-scope persona lacks the permission, so it gets 403 first
    outsider: str | None = None
    format: str = "json"

    def __str__(self):
        return f"{self.method.upper()} {self.path}"

    def url(self, ids: dict) -> str:
        return self.path.format(**ids)

    def body_for(self, ids: dict):
        return self.body(ids) if callable(self.body) else self.body

    def call(self, client, ids: dict, body=None):
        body = self.body_for(ids) if body is None else body
        if self.content_type:
            return client.generic(self.method.upper(), self.url(ids), body, content_type=self.content_type)
        if body is None:
            return getattr(client, self.method)(self.url(ids))
        return getattr(client, self.method)(self.url(ids), body, format=self.format)


class EndpointContract:
    """The checks every API endpoint inherits (HOUSE_STYLE "API"): anonymous 401, a bad key 401, a
    read key on a write 403 with nothing changed, unknown and out-of-scope objects 404, and the
    right key succeeds.

    A test module subclasses it as `TestXxx`, parametrizes `endpoint` over its ENDPOINTS and provides
    the fixtures `known` and `unknown` (placeholder values of objects that exist and that do not);
    `out_of_scope_actor` names a persona who must not see the known objects (None: nobody),
    and `state()` returns what a refused write must leave unchanged.
    """

    out_of_scope_actor: str | None = "outsider"

    def state(self):
        return None

    def test_anonymous_is_401(self, endpoint, known):
        response = endpoint.call(APIClient(), known)
        if endpoint.open:
            assert response.status_code < 400 or response.status_code == 503, response.content
            return
        assert response.status_code == 401, response.content
        assert response.json()["error"] in ("not_authenticated", "authentication_failed")

    def test_a_bad_key_is_401(self, endpoint, known):
        if endpoint.open:
            pytest.skip("open endpoint")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Bearer trt_0000_not-a-real-secret")
        assert endpoint.call(client, known).status_code == 401

    def test_read_key_on_a_write_is_403(self, endpoint, known, request):
        if not endpoint.write:
            pytest.skip("read endpoint")
        before = self.state()
        response = endpoint.call(key_client(request.getfixturevalue(endpoint.actor), "read"), known)
        assert response.status_code == 403
        assert response.json()["error"] == "permission_denied"
        assert self.state() == before

    def test_unknown_object_is_404(self, endpoint, unknown, request):
        if not endpoint.has_object:
            pytest.skip("no object in the request")
        response = endpoint.call(key_client(request.getfixturevalue(endpoint.actor), "write"), unknown)
        assert response.status_code == 404, response.content
        assert response.json()["error"] == "not_found"

    def test_out_of_scope_object_is_404(self, endpoint, known, request):
        outsider = endpoint.outsider or self.out_of_scope_actor
        if not endpoint.has_object or not endpoint.out_of_scope or outsider in (None, endpoint.actor):
            pytest.skip("no persona for whom the object is out of scope")
        before = self.state()
        response = endpoint.call(key_client(request.getfixturevalue(outsider), "write"), known)
        assert response.status_code == 404, response.content
        assert response.json()["error"] == "not_found"
        assert self.state() == before

    def test_the_right_key_succeeds(self, endpoint, known, request):
        if endpoint.open:
            pytest.skip("open endpoint (checked anonymously)")
        scope = "write" if endpoint.write else "read"
        response = endpoint.call(key_client(request.getfixturevalue(endpoint.actor), scope), known)
        assert 200 <= response.status_code < 300, response.content

    def test_the_body_takes_what_the_schema_documents_and_nothing_else(self, endpoint, known, request):
        """The OpenAPI document is the behaviour (apps.core.validation): an undocumented key is refused by
        name, and no documented key is ever refused as unknown."""
        body = endpoint.body_for(known)
        if endpoint.method == "get" or not isinstance(body, dict) or endpoint.content_type or endpoint.format != "json":
            pytest.skip("no JSON object body")
        documented = documented_body_fields(endpoint.method, endpoint.url(known).split("?")[0])
        assert set(body) <= documented, f"the matrix sends undocumented fields {set(body) - documented}"
        client = key_client(request.getfixturevalue(endpoint.actor), "write" if endpoint.write else "read")
        refused = endpoint.call(client, known, {**body, "zz_undocumented": 1})
        assert refused.status_code == 400 and "zz_undocumented" in refused.json()["detail"], refused.content
        for name in sorted(documented - set(body)):
            detail = endpoint.call(client, known, {**body, name: None}).json().get("detail")
            assert "Unknown field" not in str((detail or {}).get(name) if isinstance(detail, dict) else ""), name


def documented_body_fields(method: str, url: str) -> set[str]:
    """The properties the OpenAPI document gives the JSON body of `method url`."""
    from django.urls import resolve

    schema = _openapi()
    path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", resolve(url).route)
    body = schema["paths"][path][method.lower()].get("requestBody", {}).get("content", {}).get("application/json")
    if body is None:
        return set()
    ref = body["schema"].get("$ref", "")
    component = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else body["schema"]
    return set(component.get("properties", {}))


@functools.cache
def _openapi() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def api_routes(urlconf=None) -> set[tuple[str, str]]:
    """Every (route pattern, HTTP method) the URLconf serves under `api/`."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found = set()

    def walk(patterns, prefix):
        for pattern in patterns:
            # As ResolverMatch.route spells it: a regex pattern loses its leading "^".
            route = prefix + str(pattern.pattern).removeprefix("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/"):
                view = getattr(pattern.callback, "view_class", None)
                if view is None:  # a plain function view: at least GET
                    found.add((route, "GET"))
                    continue
                for method in view.http_method_names:
                    if method not in ("head", "options", "trace") and hasattr(view, method):
                        found.add((route, method.upper()))

    walk(get_resolver(urlconf).url_patterns, "")
    return found


def matrix_routes(endpoints, urlconf=None) -> set[tuple[str, str]]:
    """The (route pattern, HTTP method) pairs that permission-matrix rows exercise."""
    from django.urls import resolve

    covered = set()
    for endpoint in endpoints:
        path = endpoint.path.split("?")[0].format_map(_AnyId())
        covered.add((resolve(path, urlconf).route, endpoint.method.upper()))
    return covered


class _AnyId(dict):
    def __missing__(self, key):
        return "00000000-0000-4000-8000-000000000000"


# --- browser tests (Debian's chromium through Playwright; the `browser_page` fixture is in conftest.py) ---

SHOTS = settings.BASE_DIR / "var" / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_shot(page, name: str) -> None:
    """A full-page screenshot into var/test-artifacts/ (the README shows some of them)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
