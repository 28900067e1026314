"""API fuzzing with schemathesis against the OpenAPI schema the server publishes (/api/schema/), in
process through the WSGI app, with a superuser's write key, a fixed seed and a bounded number of
examples per operation. Every response must be no server error and must match the schema (status
code, content type, body). Generated strings include NUL, very long and non-ASCII text."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from apps.core.testing import key_client
from tunixrt.wsgi import application

# The schema types an NDJSON upload as a string: it goes on the wire as the text it is (the built-in
# text/plain serializer), so the ingest endpoints are fuzzed too instead of skipped.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """The WSGI app would close the database connection after each request (inside the test's
    transaction); Django's own test client turns that off the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def auth_headers(superuser):
    client = key_client(superuser, "write")
    return {"Authorization": client._credentials["HTTP_AUTHORIZATION"]}


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=8, derandomize=True, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_operation_answers_a_server_error_or_breaks_its_schema(case, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)


# '²' and '١' are digits to str.isdigit() but not to int(); 30 nines overflow a 64-bit key.
BAD_VALUES = {"nul": "a%00b", "long": "x" * 5000, "non-utf8": "%FF%FE%FD", "unicode": "%F0%9F%A7%A0%E2%80%AE",
              "superscript-digit": "%C2%B2", "arabic-digit": "%D9%A1", "huge-number": "9" * 30}


def _fill(route: str, value: str) -> str:
    import re

    path = re.sub(r"<(?:[a-z]+:)?[a-z_]+>", value, route)
    path = re.sub(r"\(\?P<[a-z_]+>[^)]*\)", value, path)
    return "/" + path.rstrip("$")


@pytest.mark.django_db
@pytest.mark.parametrize("value", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_hostile_path_and_query_values_never_cause_a_server_error(superuser, value):
    from apps.core.testing import api_routes

    client = key_client(superuser, "write")
    for route, method in sorted(api_routes()):
        if "<" not in route and "(?P" not in route and method != "GET":
            continue
        url = _fill(route, value) + f"?q={value}&limit={value}&status={value}"
        response = client.generic(method, url, b"{}", content_type="application/json")
        assert response.status_code < 500, (method, url[:200], response.status_code, response.content[:300])
