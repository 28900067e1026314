"""Shared fixtures: personas (owner, curator, outsider, trainer, viewer, contractor, admin), API clients
with keys."""

import os
import re

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache, caches
from rest_framework.test import APIClient

from apps.core.testing import key_client
from apps.traces.testing import make_trace_body
from tunixrt.celery import app as celery_app

XDIST_MAX_WORKERS = 3


def _own_redis_databases_per_xdist_worker() -> None:
    """pytest-django gives each pytest-xdist worker its own test database; this gives it its own Celery
    broker and cache Redis databases too. Without it one worker's `cache.clear()` empties another's cache
    mid-test, and a real Celery worker started by one test takes another's tasks. gw0 (and a run without
    xdist) keeps the Makefile's broker 15 and cache 12; gwN uses 15 - 2N and 12 - 2N (db 14 is bench_runs')."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if re.fullmatch(r"gw\d+", worker) else 0
    if not index:
        return
    if index >= XDIST_MAX_WORKERS:
        raise pytest.UsageError(f"the tests run on at most {XDIST_MAX_WORKERS} xdist workers (got {worker})")
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        # Celery reads the variable before its settings; subprocess workers inherit it.
        settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"] = _with_db(settings.CELERY_BROKER_URL,
                                                                                15 - 2 * index)
        celery_app.conf.broker_url = settings.CELERY_BROKER_URL
        celery_app._pool = celery_app.amqp._producer_pool = None
    if settings.CACHE_URL:
        settings.CACHE_URL = os.environ["CACHE_URL"] = _with_db(settings.CACHE_URL, 12 - 2 * index)
        settings.CACHES["default"]["LOCATION"] = settings.CACHE_URL
        caches._settings = caches.settings = caches.configure_settings(None)


def _with_db(url: str, db: int) -> str:
    return re.sub(r"/\d+$", f"/{db}", url)


_own_redis_databases_per_xdist_worker()


@pytest.fixture(autouse=True)
def empty_cache():
    """The cache (Redis under `make test`) lives outside the test transaction: start every test empty,
    or one test's cached keys and pages would answer the next test's requests."""
    cache.clear()


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """Personas get passwords; a fast hasher keeps that from dominating the tests' set-up."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def eager_celery(request):
    """Service tests run tasks in-process; tests marked `worker` talk to a real worker instead."""
    if request.node.get_closest_marker("worker"):
        yield
        return
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def data_dirs(settings, tmp_path):
    """Every test writes dataset versions, run folders and models under its own folder, never into the shared
    data folder (and never one xdist worker beside another)."""
    settings.DATASETS_DIR = tmp_path / "datasets"
    settings.RUNS_DIR = tmp_path / "runs"
    settings.MODELS_DIR = tmp_path / "models"
    settings.SERVING_DIR = tmp_path / "serving"
    return tmp_path


@pytest.fixture
def dataset(db):
    """A small approved dataset version to train on (apps.runs.testing.make_dataset)."""
    from apps.runs.testing import make_dataset

    return make_dataset()


@pytest.fixture
def small_set(db):
    """Six items in two sections and two categories (apps.evaluations.testing.make_eval_set)."""
    from apps.evaluations.testing import make_eval_set

    return make_eval_set()


@pytest.fixture(scope="session")
def trained_out(tmp_path_factory):
    """A real tiny checkpoint, trained once per session (per xdist worker): generation and judging are real."""
    from apps.evaluations.testing import train_tiny_checkpoint

    return train_tiny_checkpoint(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def completed_run(dataset, trainer, trained_out):
    """A completed run owning a copy of `trained_out`, its artifacts recorded."""
    from apps.evaluations.testing import make_completed_run

    return make_completed_run(dataset, trainer, trained_out)


@pytest.fixture(scope="session")
def s3_env():
    """moto's S3 emulator for the session (apps.core.testing.s3_emulator), its variables set in this
    process for good: s3fs clients are cached per process, so the endpoint must not change."""
    from apps.core.testing import s3_emulator

    with s3_emulator() as env:
        os.environ.update(env)
        yield env


@pytest.fixture
def s3_store_url(s3_env):
    """A fresh bucket in the emulator, as an ARTIFACT_STORE_URL."""
    import uuid

    import s3fs

    bucket = f"tunixrt-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem().mkdir(bucket)
    return f"s3://{bucket}/store"


@pytest.fixture
def trace_body():
    return make_trace_body


def _user(username, group=None, **extra):
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def owner(db):
    return _user("owner", group="contributor")


@pytest.fixture
def outsider(db):
    return _user("outsider", group="contributor")


@pytest.fixture
def curator(db):
    return _user("curator", group="curator", is_staff=True)


@pytest.fixture
def trainer(db):
    return _user("trainer", group="trainer")


@pytest.fixture
def viewer(db):
    return _user("viewer", group="viewer", is_staff=True)


# The write permissions of a trainer without any view-all permission: evaluates, checks, imports,
# promotes and sweeps, but sees only what they created. The persona for whom everyone else's runs,
# datasets, evaluations, baselines, models and sweeps are out of reach (404) on write endpoints.
CONTRACTOR_PERMISSIONS = [("evaluations", "add_evaluation"), ("evaluations", "add_regressionbaseline"),
                          ("evaluations", "add_regressioncheck"), ("runs", "add_trainingrun"),
                          ("sweeps", "add_sweepjob"), ("registry", "add_registeredmodel"),
                          ("registry", "add_modelversion")]


@pytest.fixture
def contractor(db):
    from django.contrib.auth.models import Permission

    user = _user("contractor")
    for app_label, codename in CONTRACTOR_PERMISSIONS:
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return User.objects.get(pk=user.pk)  # a fresh object: no stale permission cache


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("admin", "admin@example.com", "pw-admin")


@pytest.fixture
def write_client(owner):
    return key_client(owner, "write")


@pytest.fixture
def read_client(owner):
    return key_client(owner, "read")


@pytest.fixture
def curator_client(curator):
    return key_client(curator, "write")


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def browser_page(monkeypatch):
    """A chromium page (1400×1000) for the browser tests; fails clearly when Debian's chromium is missing."""
    from apps.core.testing import CHROMIUM, CHROMIUM_ARGS

    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium).")
    # The ORM between Playwright's calls, never during them; scoped to this test so it never leaks into others.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()
