"""The evaluations admin's cancel action: behind the cancel permission, a queued evaluation is cancelled
at once, a finished one is counted and left as it was."""

import pytest
from django.contrib.auth.models import Group, User

from apps.evaluations.models import Evaluation
from apps.evaluations.tests.factories import scored_evaluation


@pytest.fixture
def staff(db):
    def member(name: str, group: str) -> User:
        user = User.objects.create_user(name, password="pw", is_staff=True)
        user.groups.add(Group.objects.get(name=group))
        return user
    return member


def _cancel(client, *evaluations):
    return client.post("/admin/evaluations/evaluation/", {"action": "cancel_evaluations",
                                                          "_selected_action": [str(e.pk) for e in evaluations]},
                       follow=True)


@pytest.mark.django_db
def test_the_cancel_action_cancels_what_is_queued_and_counts_what_had_finished(client, staff, small_set):
    finished = scored_evaluation(None, small_set, [True, False])
    queued = Evaluation.objects.create(eval_set=small_set, eval_set_hash=small_set.content_hash, judges=[],
                                       judge_key="k", status="queued")
    client.force_login(staff("staff-trainer", "trainer"))
    page = _cancel(client, finished, queued)
    assert "Cancel requested for 1 evaluation(s); 1 had already finished" in page.content.decode()
    assert Evaluation.objects.get(pk=queued.pk).status == "cancelled"
    assert Evaluation.objects.get(pk=finished.pk).status == "completed"


@pytest.mark.django_db
def test_a_viewer_is_not_offered_the_action_and_cannot_post_it(client, staff, small_set):
    queued = Evaluation.objects.create(eval_set=small_set, eval_set_hash=small_set.content_hash, judges=[],
                                       judge_key="k", status="queued")
    client.force_login(staff("staff-viewer", "viewer"))
    assert "cancel_evaluations" not in client.get("/admin/evaluations/evaluation/").content.decode()
    _cancel(client, queued)
    assert Evaluation.objects.get(pk=queued.pk).status == "queued"
