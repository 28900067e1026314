"""The champion gate's evidence no client can fake or shrink: its baseline belongs to the system (a
squatted name changes nothing), CHAMPION_TOLERANCE and CHAMPION_DECISION apply at check time, and it
decides only on server evaluations of each version's own checkpoint on the whole eval set."""

import pytest

from apps.core.testing import key_client
from apps.evaluations.models import BaselineKind, RegressionBaseline, RegressionCheck
from apps.evaluations.tests.factories import scored_evaluation
from apps.registry.models import AliasEvent, ModelAlias, RegisteredModel
from apps.registry.services import model_version_promote

CHAMPION = [True] * 4 + [False] * 2   # 4/6
WORSE = [True] * 3 + [False] * 3      # 3/6: strictly worse by 1/6


@pytest.fixture
def versions(trainer, completed_run, another_run):
    model = RegisteredModel.objects.create(name="reasoner")
    v1, _ = model_version_promote(model=model, data={"run_id": str(completed_run.pk)})
    v2, _ = model_version_promote(model=model, data={"run_id": str(another_run.pk)})
    return model, v1, v2


def _move(user, version, **body):
    return key_client(user).put("/api/models/reasoner/aliases/champion", {"version": version, **body}, format="json")


def _champion():
    return ModelAlias.objects.get(name="champion").version.label


@pytest.mark.django_db
def test_a_squatted_gate_baseline_changes_nothing(trainer, versions, completed_run, another_run, small_set):
    model, v1, _ = versions
    base = scored_evaluation(completed_run, small_set, CHAMPION)
    scored_evaluation(another_run, small_set, WORSE)
    assert _move(trainer, "v1").status_code == 200
    client = key_client(trainer)
    # The name the old gate looked up, and the gate's own namespace, with a tolerance that passes anything.
    old_name = f"reasoner:champion:v1:{str(base.pk)[:8]}"
    assert client.post("/api/regression/baselines", {"name": old_name, "evaluation_id": str(base.pk),
                                                     "tolerance": 1.0}, format="json").status_code == 201
    squat = client.post("/api/regression/baselines", {"name": f"gate:model:{model.pk}:champion:{base.pk}",
                                                      "evaluation_id": str(base.pk), "tolerance": 1.0}, format="json")
    assert squat.status_code == 400 and "champion gate" in squat.json()["detail"]["name"][0]
    refused = _move(trainer, "v2")
    assert refused.status_code == 409 and refused.json()["error"] == "regression_check_failed"
    check = RegressionCheck.objects.get()
    assert check.baseline.kind == BaselineKind.CHAMPION_GATE and check.details["tolerance"] == 0.0
    assert _champion() == "v1"
    assert RegressionBaseline.objects.get(name=old_name).checks.count() == 0


@pytest.mark.django_db
def test_changing_champion_tolerance_takes_effect_at_the_next_move(trainer, versions, completed_run, another_run,
                                                                   small_set, settings):
    scored_evaluation(completed_run, small_set, CHAMPION)
    scored_evaluation(another_run, small_set, WORSE)
    _move(trainer, "v1")
    settings.CHAMPION_TOLERANCE = 0.0
    assert _move(trainer, "v2").status_code == 409
    settings.CHAMPION_TOLERANCE = 0.2  # 1/6 worse is within 0.2: the stored failing check is not reused
    moved = _move(trainer, "v2")
    assert moved.status_code == 200, moved.content
    assert moved.json()["regression_check"]["result"] == "pass" and _champion() == "v2"
    assert RegressionCheck.objects.count() == 2


@pytest.mark.django_db
def test_the_gate_can_decide_on_the_paired_interval(trainer, versions, completed_run, another_run, small_set,
                                                    settings):
    scored_evaluation(completed_run, small_set, CHAMPION)
    scored_evaluation(another_run, small_set, [True] * 3 + [False] * 2 + [True])  # 4/6, one item traded
    _move(trainer, "v1")
    settings.CHAMPION_DECISION = "point"
    point = _move(trainer, "v2")
    assert point.status_code == 200 and point.json()["regression_check"]["decision"] == "point"
    ModelAlias.objects.filter(name="champion").delete()
    _move(trainer, "v1")
    settings.CHAMPION_DECISION = "paired_ci"  # equal points, but the interval's worse end is below zero
    refused = _move(trainer, "v2")
    assert refused.status_code == 409 and refused.json()["check"]["decision"] == "paired_ci"
    assert refused.json()["check"]["paired_items"] == 6 and refused.json()["check"]["minimum_detectable_effect"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize("evidence", [
    lambda run, s: scored_evaluation(run, s, [True] * 4),                              # a slice, not the set
    lambda run, s: scored_evaluation(run, s, [True] * 6, checkpoint_step=15),         # another checkpoint
    lambda run, s: scored_evaluation(run, s, [True] * 6, source="imported"),          # a client's word
])
def test_the_gate_refuses_evidence_of_a_slice_another_checkpoint_or_a_client(trainer, versions, completed_run,
                                                                            another_run, small_set, evidence):
    scored_evaluation(completed_run, small_set, CHAMPION)
    evidence(another_run, small_set)
    _move(trainer, "v1")
    refused = _move(trainer, "v2")
    assert refused.status_code == 409 and refused.json()["error"] == "needs_evaluation"
    assert refused.json()["evaluate"].startswith("/api/models/versions/")
    assert _champion() == "v1"
    assert AliasEvent.objects.filter(outcome="refused").count() == 1  # the refusal is in the history


@pytest.mark.django_db
def test_a_configured_minimum_of_items_stands_in_for_the_whole_set(trainer, versions, completed_run, another_run,
                                                                   small_set, settings):
    scored_evaluation(completed_run, small_set, [True] * 2 + [False] * 2)
    scored_evaluation(another_run, small_set, [True] * 3 + [False])
    _move(trainer, "v1")
    assert _move(trainer, "v2").status_code == 409
    settings.CHAMPION_MIN_ITEMS = 4
    moved = _move(trainer, "v2")
    assert moved.status_code == 200 and moved.json()["regression_check"]["paired_items"] == 4
