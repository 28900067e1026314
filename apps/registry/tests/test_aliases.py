"""The champion gate: refused on a failing regression check, allowed on a passing one, forced by a
superuser with a reason, refused when forced by anyone else; the history shows every attempt."""

from unittest import mock

import pytest

from apps.core.testing import key_client
from apps.evaluations.tests.factories import scored_evaluation
from apps.registry import services
from apps.registry.models import AliasEvent, ModelAlias, RegisteredModel
from apps.registry.services import model_version_promote


@pytest.fixture
def versions(trainer, completed_run, another_run):
    model = RegisteredModel.objects.create(name="reasoner")
    v1, _ = model_version_promote(model=model, data={"run_id": str(completed_run.pk)})
    v2, _ = model_version_promote(model=model, data={"run_id": str(another_run.pk)})
    return model, v1, v2


def _move(user, alias, **body):
    return key_client(user).put(f"/api/models/reasoner/aliases/{alias}", body, format="json")


def _scores(completed_run, another_run, small_set, v1_correct, v2_correct):
    scored_evaluation(completed_run, small_set, v1_correct)
    scored_evaluation(another_run, small_set, v2_correct)


@pytest.mark.django_db
def test_the_first_champion_needs_no_check_and_a_worse_one_is_refused(trainer, versions, completed_run,
                                                                      another_run, small_set):
    _scores(completed_run, another_run, small_set, [True] * 4 + [False] * 2, [True] * 2 + [False] * 4)
    assert _move(trainer, "champion", version="v1").status_code == 200
    refused = _move(trainer, "champion", version="v2")
    assert refused.status_code == 409 and refused.json()["error"] == "regression_check_failed"
    assert refused.json()["check"]["result"] == "fail"
    assert ModelAlias.objects.get(name="champion").version.label == "v1"


@pytest.mark.django_db
def test_a_passing_check_moves_the_champion_and_is_reused(trainer, versions, completed_run, another_run, small_set):
    _scores(completed_run, another_run, small_set, [True] * 3 + [False] * 3, [True] * 5 + [False])
    _move(trainer, "champion", version="v1")
    moved = _move(trainer, "champion", version="v2")
    assert moved.status_code == 200, moved.content
    assert moved.json()["regression_check"]["result"] == "pass"
    assert ModelAlias.objects.get(name="champion").version.label == "v2"


@pytest.mark.django_db
def test_forcing_needs_a_superuser_and_a_reason(trainer, superuser, versions, completed_run, another_run, small_set):
    _scores(completed_run, another_run, small_set, [True] * 6, [False] * 6)
    _move(trainer, "champion", version="v1")
    assert _move(trainer, "champion", version="v2", force=True, reason="hotfix").status_code == 403
    assert _move(superuser, "champion", version="v2", force=True).status_code == 400  # no reason
    forced = _move(superuser, "champion", version="v2", force=True, reason="v1 leaks answers; rolling forward")
    assert forced.status_code == 200 and forced.json()["forced"] is True
    assert ModelAlias.objects.get(name="champion").version.label == "v2"


@pytest.mark.django_db
def test_the_history_shows_every_attempt(trainer, superuser, versions, completed_run, another_run, small_set):
    _scores(completed_run, another_run, small_set, [True] * 6, [False] * 6)
    _move(trainer, "champion", version="v1")
    _move(trainer, "champion", version="v2")
    _move(trainer, "champion", version="v2", force=True, reason="please")
    _move(superuser, "champion", version="v2", force=True, reason="incident 42")
    history = key_client(trainer).get("/api/models/reasoner").json()["alias_history"]
    assert [(e["outcome"], e["to_version"], e["forced"]) for e in reversed(history)] == [
        ("moved", "v1", False), ("refused", "v2", False), ("refused", "v2", True), ("moved", "v2", True)]
    assert history[2]["regression_check"]["result"] == "fail"
    assert AliasEvent.objects.count() == 4


@pytest.mark.django_db
def test_a_champion_without_comparable_evaluations_cannot_move(trainer, versions):
    _move(trainer, "champion", version="v1")
    response = _move(trainer, "champion", version="v2")
    assert response.status_code == 409 and response.json()["error"] == "needs_evaluation"


@pytest.mark.django_db
def test_other_aliases_move_freely_and_unknown_targets_are_refused(trainer, versions):
    assert _move(trainer, "candidate", version="v2").status_code == 200
    assert _move(trainer, "candidate", version="v9").status_code == 400
    assert _move(trainer, "Bad Alias!", version="v1").status_code == 400
    assert ModelAlias.objects.get(name="candidate").version.label == "v2"


@pytest.mark.django_db
def test_a_champion_that_moves_during_the_check_refuses_the_stale_move(trainer, versions, completed_run,
                                                                      another_run, small_set):
    model, v1, v2 = versions
    _scores(completed_run, another_run, small_set, [True] * 3 + [False] * 3, [True] * 5 + [False])
    _move(trainer, "champion", version="v1")
    real_check = services.champion_check

    def check_while_another_move_lands(**kwargs):
        ModelAlias.objects.filter(model=model, name="champion").update(version=v2)  # a concurrent move
        return real_check(**kwargs)

    with mock.patch.object(services, "champion_check", side_effect=check_while_another_move_lands):
        stale = _move(trainer, "champion", version="v2")
    assert stale.status_code == 409 and stale.json()["error"] == "alias_moved"
    assert AliasEvent.objects.filter(to_version=v2).get().outcome == "refused"
