"""Every admin list page renders for a superuser (a broken list_display or filter fails here)."""

import pytest
from django.contrib import admin
from django.urls import reverse


@pytest.mark.django_db
def test_every_registered_admin_list_renders(client, superuser):
    client.force_login(superuser)
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    assert client.get("/admin/").status_code == 200
