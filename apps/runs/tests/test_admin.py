"""The runs admin: list with filters, the run page with charts, log tail and artifacts, and a cancel
button behind a confirmation page and the cancel permission."""

from unittest import mock

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from apps.runs.models import RunMetric, TrainingRun
from apps.runs.services import training_run_plan, training_run_submit

from .conftest import tiny_config


@pytest.fixture
def run(trainer, dataset):
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config()}, user=trainer)
    with mock.patch("apps.runs.services.enqueue_training_run"):
        run = training_run_submit(plan=plan, user=trainer)
    RunMetric.objects.bulk_create([RunMetric(run=run, step=i, loss=2.0 / i, lr=1e-3, tokens_per_s=100.0,
                                             at=timezone.now()) for i in range(1, 6)])
    return run


@pytest.fixture
def staff_trainer(db):
    user = User.objects.create_user("staff-trainer", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="trainer"))
    return user


@pytest.mark.django_db
def test_the_list_filters_by_status_and_dataset(client, superuser, run):
    client.force_login(superuser)
    page = client.get("/admin/runs/trainingrun/?status=queued&dataset=runs-v1")
    assert page.status_code == 200 and str(run.pk)[:8] in page.content.decode()
    assert str(run.pk)[:8] not in client.get("/admin/runs/trainingrun/?status=completed").content.decode()


@pytest.mark.django_db
def test_the_run_page_shows_charts_and_the_live_log(client, staff_trainer, run):
    client.force_login(staff_trainer)
    html = client.get(f"/admin/runs/trainingrun/{run.pk}/change/").content.decode()
    assert "<svg" in html and "loss by step" in html and "learning rate by step" in html
    assert f'data-url="/api/tunix/runs/{run.pk}/logs"' in html
    assert "Cancel run…" in html


@pytest.mark.django_db
def test_cancel_asks_first_then_cancels(client, staff_trainer, run):
    client.force_login(staff_trainer)
    confirm = client.get(f"/admin/runs/trainingrun/{run.pk}/cancel/")
    assert confirm.status_code == 200 and "Yes, cancel the run" in confirm.content.decode()
    assert TrainingRun.objects.get(pk=run.pk).status == "queued"
    client.post(f"/admin/runs/trainingrun/{run.pk}/cancel/")
    assert TrainingRun.objects.get(pk=run.pk).status == "cancelled"


@pytest.mark.django_db
def test_a_viewer_sees_the_page_but_cannot_cancel(client, run):
    viewer = User.objects.create_user("staff-viewer", password="pw", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewer"))
    client.force_login(viewer)
    assert "Cancel run…" not in client.get(f"/admin/runs/trainingrun/{run.pk}/change/").content.decode()
    assert client.post(f"/admin/runs/trainingrun/{run.pk}/cancel/").status_code == 403
    assert TrainingRun.objects.get(pk=run.pk).status == "queued"
