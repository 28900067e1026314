"""Sweeps: validation, the ask-and-tell scheduler (concurrency, determinism, a restart that neither
loses nor repeats a trial, the best trial), cancellation, and the sweep page."""


import pytest
from django.conf import settings

from apps.core.testing import key_client, tasks_not_sent
from apps.runs.models import TrainingRun
from apps.runs.testing import tiny_config
from apps.sweeps.models import SweepJob, SweepTrial
from apps.sweeps.services import sweep_advance, sweep_cancel, sweep_create, sweep_start, sweep_trial_run_finished

SPACE = {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
         "batch_size": {"type": "choice", "values": [2, 4]}}


def _body(dataset, **extra):
    return {"dataset_id": dataset.pk, "base_config": tiny_config(), "search_space": SPACE, "n_trials": 3,
            "metric": "final_loss", **extra}


@pytest.fixture(autouse=True)
def no_queue():
    with tasks_not_sent():
        yield


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "field"), [
    ({"search_space": {}}, "search_space"),
    ({"search_space": {"learnin_rate": {"type": "uniform", "low": 0.1, "high": 0.2}}}, "search_space.learnin_rate"),
    ({"search_space": {"learning_rate": {"type": "uniform", "low": 0.1, "high": 5}}}, "search_space.learning_rate"),
    ({"search_space": {"batch_size": {"type": "randint", "low": 4, "high": 2}}}, "search_space.batch_size"),
    ({"search_space": {"batch_size": {"type": "gaussian"}}}, "search_space.batch_size"),
    ({"n_trials": 0}, "n_trials"),
    ({"n_trials": None}, "n_trials"),
    ({"max_concurrent": 0}, "max_concurrent"),
    ({"base_config": {**tiny_config(), "bogus": 1}}, "base_config.bogus"),
    ({"direction": "sideways"}, "direction"),
    ({"metric": "answer_accuracy", "eval_set": "no-such-set"}, "eval_set"),
    # The same confinement as a direct run's config: no server path, and no path in the message.
    ({"base_config": {**tiny_config(), "backend": "tunix", "model": "gemma3-tiny", "model_dir": "/etc"}},
     "base_config.model_dir"),
    ({"base_config": {**tiny_config(), "backend": "tunix", "model": "gemma3-tiny", "model_dir": "../../etc"}},
     "base_config.model_dir"),
])
def test_bad_sweeps_are_refused_and_nothing_is_stored(trainer, dataset, change, field):
    response = key_client(trainer).post("/api/tuning/jobs", _body(dataset, **change), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["detail"], response.json()
    assert str(settings.MODELS_DIR) not in response.content.decode()  # no server path in any message
    assert not SweepJob.objects.exists()


def _complete_running(sweep, losses):
    for trial in SweepTrial.objects.filter(sweep=sweep, state="running").order_by("number"):
        TrainingRun.objects.filter(pk=trial.run_id).update(status="completed", final_loss=losses[trial.number])
        sweep_trial_run_finished(run_id=trial.run_id)


@pytest.mark.django_db
def test_the_scheduler_keeps_max_concurrent_trials_and_names_the_best(trainer, dataset):
    sweep = sweep_start(sweep=sweep_create(data=_body(dataset, max_concurrent=2), user=trainer))
    assert sweep.trials.count() == 2 and sweep.status == "running"
    assert sweep_advance(sweep_id=sweep.pk) == 0  # a second advance (a restarted scheduler) launches nothing
    losses = {0: 0.9, 1: 0.4, 2: 0.7}
    _complete_running(sweep, losses)
    assert sweep.trials.count() == 3
    _complete_running(sweep, losses)
    sweep.refresh_from_db()
    assert sweep.status == "completed" and sweep.best_trial.number == 1 and sweep.best_trial.value == 0.4
    assert sorted(sweep.trials.values_list("number", flat=True)) == [0, 1, 2]
    for trial in sweep.trials.select_related("run"):
        assert trial.run.config["learning_rate"] == pytest.approx(trial.params["learning_rate"])
        assert trial.run.config["batch_size"] == trial.params["batch_size"]


@pytest.mark.django_db
def test_the_same_seed_and_history_ask_the_same_trials(trainer, dataset):
    params = []
    for _ in range(2):
        sweep = sweep_start(sweep=sweep_create(data=_body(dataset, seed=7), user=trainer))
        for _trial in range(3):
            _complete_running(sweep, {0: 0.5, 1: 0.3, 2: 0.8})
        params.append(list(sweep.trials.order_by("number").values_list("params", flat=True)))
    assert params[0] == params[1] and len(params[0]) == 3


@pytest.mark.django_db
def test_a_failed_trial_is_recorded_and_the_sweep_goes_on(trainer, dataset):
    sweep = sweep_start(sweep=sweep_create(data=_body(dataset), user=trainer))
    first = sweep.trials.get()
    TrainingRun.objects.filter(pk=first.run_id).update(status="failed", error="trainer exited with code 1")
    sweep_trial_run_finished(run_id=first.run_id)
    failed = SweepTrial.objects.get(pk=first.pk)
    assert failed.state == "failed" and "run failed: trainer exited" in failed.error and sweep.trials.count() == 2


@pytest.mark.django_db
def test_cancel_stops_launching_and_cancels_the_running_trials(trainer, dataset):
    sweep = sweep_start(sweep=sweep_create(data=_body(dataset, max_concurrent=2), user=trainer))
    sweep_cancel(sweep=sweep)
    assert SweepJob.objects.get(pk=sweep.pk).status == "cancelled"
    assert set(TrainingRun.objects.values_list("status", flat=True)) == {"cancelled"}
    assert sweep_advance(sweep_id=sweep.pk) == 0 and sweep.trials.count() == 2


@pytest.mark.django_db
def test_the_sweep_page_charts_the_metric_against_each_parameter(client, superuser, trainer, dataset):
    sweep = sweep_start(sweep=sweep_create(data=_body(dataset), user=trainer))
    _complete_running(sweep, {0: 0.5, 1: 0.3, 2: 0.8})
    client.force_login(superuser)
    html = client.get(f"/admin/sweeps/sweepjob/{sweep.pk}/change/").content.decode()
    assert "final_loss by learning_rate" in html and "final_loss by batch_size" in html
