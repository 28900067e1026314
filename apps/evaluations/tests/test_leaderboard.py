"""The leaderboard ranks evaluations only among comparable ones (same eval-set content, judges and
versions, section and limit), best first, each row with its interval and links."""

import pytest

from apps.core.testing import key_client
from apps.evaluations.testing import SMALL_ITEMS, make_eval_set

from .factories import scored_evaluation


@pytest.mark.django_db
def test_evaluations_on_different_eval_set_hashes_are_never_ranked_together(viewer, completed_run, small_set):
    other = make_eval_set(name="small", version="v2", items=SMALL_ITEMS)  # same items, another hash
    best = scored_evaluation(completed_run, small_set, [True] * 6)
    worse = scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    alone = scored_evaluation(completed_run, other, [True] * 2 + [False] * 4)
    rows = key_client(viewer).get("/api/tunix/evaluations").json()["results"]
    ranks = {row["evaluation_id"]: (row["rank"], row["group"]["eval_set_hash"]) for row in rows}
    assert ranks[str(best.pk)] == (1, small_set.content_hash)
    assert ranks[str(worse.pk)] == (2, small_set.content_hash)
    assert ranks[str(alone.pk)] == (1, other.content_hash)


@pytest.mark.django_db
def test_other_judges_form_another_group(viewer, completed_run, small_set):
    plain = scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    checked = scored_evaluation(completed_run, small_set, [True] * 6,
                                judge_names=("answer_exact", "format", "reasoning_checks"))
    rows = {row["evaluation_id"]: row for row in key_client(viewer).get("/api/tunix/evaluations").json()["results"]}
    assert rows[str(plain.pk)]["rank"] == 1 and rows[str(checked.pk)]["rank"] == 1
    assert rows[str(plain.pk)]["group"]["judge_key"] != rows[str(checked.pk)]["group"]["judge_key"]


@pytest.mark.django_db
def test_a_row_carries_its_interval_and_links(viewer, completed_run, small_set):
    evaluation = scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    row = key_client(viewer).get("/api/tunix/evaluations?eval_set=small-v1").json()["results"][0]
    assert row["primary_score"] == 0.5 and row["ci"][0] <= 0.5 <= row["ci"][1]
    assert row["predictions_url"] == f"/api/evaluations/{evaluation.pk}/predictions"
    assert row["dataset_id"] == completed_run.dataset_version_id and row["model"] == "tiny"


@pytest.mark.django_db
def test_predictions_filter_to_the_wrong_ones_and_a_category(viewer, completed_run, small_set):
    evaluation = scored_evaluation(completed_run, small_set, [True, False, True, False, False, True])
    client = key_client(viewer)
    wrong = client.get(f"/api/evaluations/{evaluation.pk}/predictions?correct=false").json()
    assert wrong["count"] == 3 and all(not row["correct"] for row in wrong["results"])
    counting = client.get(f"/api/evaluations/{evaluation.pk}/predictions?category=counting").json()
    assert {row["category"] for row in counting["results"]} == {"counting"}
    assert wrong["results"][0]["expected_answer"] and wrong["results"][0]["prompt"]


@pytest.mark.django_db
def test_the_admin_leaderboard_draws_interval_bars(client, superuser, completed_run, small_set):
    scored_evaluation(completed_run, small_set, [True] * 3 + [False] * 3)
    client.force_login(superuser)
    html = client.get("/admin/evaluations/evaluation/leaderboard/").content.decode()
    assert "<svg" in html and "answer accuracy on small-v1" in html
