"""The runs admin: list with filters, the run page with charts, log tail and artifacts, and a cancel
button behind a confirmation page and the cancel permission."""


import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from apps.core.testing import tasks_not_sent
from apps.runs.models import RunMetric, TrainingRun
from apps.runs.services import training_run_plan, training_run_submit
from apps.runs.testing import tiny_config


@pytest.fixture
def run(trainer, dataset):
    plan, _ = training_run_plan(data={"dataset_id": dataset.pk, "config": tiny_config()}, user=trainer)
    with tasks_not_sent():
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


@pytest.mark.django_db
@pytest.mark.parametrize("tokenizer", ["spm", "spm_letters"])
def test_a_run_is_started_from_the_admin_after_checking_its_plan(client, staff_trainer, dataset, tokenizer):
    client.force_login(staff_trainer)
    form = {"dataset": dataset.pk, "model": "tiny", "tokenizer": tokenizer, "packing": "on", "max_steps": 12,
            "batch_size": 4, "learning_rate": 0.003, "warmup_steps": 2, "max_seq_len": 128, "checkpoint_every": 6,
            "seed": 0, "auto_evaluate": "on"}
    checked = client.post("/admin/runs/trainingrun/start/", {**form, "check": "1"})
    assert checked.status_code == 200 and "Plan (dry run)" in checked.content.decode()
    assert not TrainingRun.objects.exists()
    with tasks_not_sent():
        started = client.post("/admin/runs/trainingrun/start/", {**form, "start": "1"})
    run = TrainingRun.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/admin/runs/trainingrun/{run.pk}/change/"
    assert (run.model, run.max_steps, run.created_by) == ("tiny", 12, staff_trainer)
    assert (run.config["tokenizer"], run.config["packing"]) == (tokenizer, True)


@pytest.mark.django_db
def test_a_bad_plan_is_shown_on_the_form(client, staff_trainer, dataset):
    client.force_login(staff_trainer)
    response = client.post("/admin/runs/trainingrun/start/", {
        "dataset": dataset.pk, "model": "tiny", "tokenizer": "byte", "max_steps": 5, "batch_size": 4,
        "learning_rate": 0.003,
        "warmup_steps": 50, "max_seq_len": 128, "checkpoint_every": 6, "seed": 0, "check": "1"})
    assert "warmup_steps" in response.content.decode() and not TrainingRun.objects.exists()


@pytest.mark.django_db
def test_the_front_page_shows_health_work_and_runs(client, superuser, run):
    client.force_login(superuser)
    html = client.get("/admin/").content.decode()
    assert 'id="tunixrt-dashboard"' in html and "Health:" in html and str(run.pk)[:8] in html
