"""Shared fixtures: personas (owner, curator, outsider, admin), API clients with keys, trace factory."""

import itertools

import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.core.services import api_key_create
from tunixrt.celery import app as celery_app

_counter = itertools.count()


@pytest.fixture(autouse=True)
def empty_cache():
    """The cache (Redis under `make test`) lives outside the test transaction: start every test empty,
    or one test's cached keys and pages would answer the next test's requests."""
    cache.clear()


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


def make_trace_body(**overrides) -> dict:
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
def superuser(db):
    return User.objects.create_superuser("admin", "admin@example.com", "pw-admin")


def key_client(user, scope="write") -> APIClient:
    _, token = api_key_create(user=user, name=f"{user.username}-{scope}", scope=scope)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


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
