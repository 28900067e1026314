"""`/api/models/{model_ref}` routes parse the ref strictly: ASCII digits are an id, a valid name is a name,
anything else (a superscript digit, a number past 64 bits, a name with a newline) is no model: 404."""

import pytest

from apps.core.testing import key_client
from apps.registry.models import RegisteredModel

ROUTES = ["/api/models/{ref}", "/api/models/{ref}/versions"]


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("ref", ["%C2%B2", "%D9%A1", "9" * 30, "reasoner%0A", "Reasoner", "-1"])
def test_a_ref_that_is_neither_an_id_nor_a_name_is_404(viewer, route, ref):
    RegisteredModel.objects.create(name="reasoner")
    response = key_client(viewer).get(route.format(ref=ref))
    assert response.status_code == 404, response.content
    assert response.json()["error"] == "not_found"


@pytest.mark.django_db
def test_a_model_is_found_by_its_id_and_by_its_name(viewer):
    model = RegisteredModel.objects.create(name="reasoner")
    client = key_client(viewer)
    assert client.get(f"/api/models/{model.pk}").json()["name"] == "reasoner"
    assert client.get("/api/models/reasoner").json()["id"] == model.pk


@pytest.mark.django_db
def test_a_promotion_to_a_superscript_ref_is_404_not_500(trainer):
    response = key_client(trainer).post("/api/models/%C2%B2/versions/promote", {"run_id": "x"}, format="json")
    assert response.status_code == 404
