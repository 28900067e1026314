"""Open endpoints, and the rule that no /api/ route exists without a row in a permission matrix.

Each app keeps its matrix in `apps/<app>/tests/test_permission_matrix.py` (module-level ENDPOINTS);
the coverage test walks the URLconf and fails for any (route, method) that no row exercises, so a new
endpoint cannot ship without the inherited 401/403/404 checks.
"""

import importlib
from pathlib import Path

import pytest
from django.urls import path

from apps.core.testing import Endpoint, EndpointContract, api_routes, matrix_routes

ENDPOINTS = [
    Endpoint("get", "/api/health", open=True),
    Endpoint("get", "/api/redi/health", open=True),
    Endpoint("get", "/api/schema/", open=True),
    Endpoint("get", "/api/docs/", open=True),
]


@pytest.fixture
def known():
    return {}


@pytest.fixture
def unknown():
    return {}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
class TestOpenEndpoints(EndpointContract):
    pass


def _all_matrix_rows() -> list[Endpoint]:
    apps_dir = Path(__file__).resolve().parents[2]
    rows = []
    for module_file in sorted(apps_dir.glob("*/tests/test_permission_matrix.py")):
        module = importlib.import_module(f"apps.{module_file.parents[1].name}.tests.test_permission_matrix")
        rows += module.ENDPOINTS
    return rows


def test_every_api_route_has_a_row_in_a_permission_matrix():
    missing = api_routes() - matrix_routes(_all_matrix_rows())
    assert not missing, f"API routes without a permission-matrix row: {sorted(missing)}"


def _unguarded_view(request):
    raise AssertionError("never called")


urlpatterns = [path("api/unguarded/<str:thing_id>", _unguarded_view)]


def test_a_route_without_a_row_is_reported():
    from tunixrt import urls

    extended = type("urlconf", (), {"urlpatterns": [*urls.urlpatterns, *urlpatterns]})
    missing = api_routes(extended) - matrix_routes(_all_matrix_rows(), extended)
    assert missing == {("api/unguarded/<str:thing_id>", "GET")}
