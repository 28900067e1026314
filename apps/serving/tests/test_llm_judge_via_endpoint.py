"""llm_judge in openai mode graded by tunix-rt's own /v1/chat/completions (the real protocol end to end, no
mock): every prediction records the judge's model (the exact version that answered), its fingerprint,
the judge version and the rubric hash, and the evaluation ranks apart from evaluations without it."""

import pytest

from apps.core.services import api_key_create
from apps.core.testing import tasks_not_sent
from apps.evaluations.judges import LLM_JUDGE_VERSION, RUBRIC_HASH
from apps.evaluations.launcher import evaluation_launch
from apps.evaluations.models import Prediction
from apps.evaluations.services import evaluation_request
from apps.evaluations.testing import make_completed_run, train_tiny_checkpoint
from apps.registry.models import ModelAlias, RegisteredModel
from apps.registry.services import model_version_promote

# The rubric alone is ~470 tokens: the judge is a tiny model trained with room for it (the model under
# evaluation keeps the session's 128-token checkpoint).
JUDGE_CONTEXT = {"max_seq_len": 768}


@pytest.fixture(scope="session")
def judge_out(tmp_path_factory):
    return train_tiny_checkpoint(tmp_path_factory.mktemp("judge"), max_steps=6, checkpoint_every=6,
                                 **JUDGE_CONTEXT)


@pytest.fixture
def judge(dataset, trainer, judge_out):
    run = make_completed_run(dataset, trainer, judge_out, max_steps=6, **JUDGE_CONTEXT)
    model = RegisteredModel.objects.create(name="grader", created_by=trainer)
    version, _ = model_version_promote(model=model, data={"run_id": str(run.pk)}, user=trainer)
    ModelAlias.objects.create(model=model, name="champion", version=version)
    return version


def _evaluated(run, judges):
    with tasks_not_sent():
        evaluation = evaluation_request(run=run, data={"eval_set": "small-v1", "judges": judges, "limit": 2,
                                                       "max_new_tokens": 32})
    assert evaluation_launch(evaluation_id=evaluation.pk) == "completed"
    evaluation.refresh_from_db()
    return evaluation


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_evaluation_graded_by_the_local_endpoint_records_the_judge_on_every_prediction(
        live_server, settings, trainer, judge, completed_run, small_set):
    _, token = api_key_create(user=trainer, name="judge", scope="read")
    settings.LLM_JUDGE_MODE, settings.LLM_JUDGE_MODEL = "openai", "grader@champion"
    settings.LLM_JUDGE_BASE_URL, settings.LLM_JUDGE_API_KEY = f"{live_server.url}/v1", token
    settings.LLM_JUDGE_MAX_TOKENS = 64
    graded = _evaluated(completed_run, ["answer_exact", "format", "llm_judge"])
    verdicts = [p.llm_judge for p in Prediction.objects.filter(evaluation=graded)]
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert verdict["mode"] == "openai" and verdict["judge_model"] == "grader:v1"
        assert verdict["judge_fingerprint"] == f"tunixrt-{judge.pk}"
        assert verdict["judge_version"] == LLM_JUDGE_VERSION and verdict["rubric_sha256"] == RUBRIC_HASH
        # The tiny judge rarely writes the JSON verdict; when it does not, that is stored, never a score.
        assert verdict["score"] is not None or verdict["error"] == "malformed_reply"
        assert token not in str(verdict)
    plain = _evaluated(completed_run, ["answer_exact", "format"])
    assert "llm_judge@1:openai:grader@champion:" in graded.judge_key
    assert graded.judge_key != plain.judge_key  # ranked in separate leaderboard groups
