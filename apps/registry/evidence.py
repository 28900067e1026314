"""What a model version's numbers and a champion move rest on (SPEC §6).

A version records the checkpoint step it copied. Its metrics, and the evidence behind moving the
`champion` alias, are only server evaluations of that step on the whole eval set (or CHAMPION_MIN_ITEMS
items; `weights_evidence`): never imported outputs, never a small slice, never another checkpoint.
Once a version has metrics, only a newer evaluation comparable with them (same eval-set content,
judges, slice, source) replaces them, so a limit-10 evaluation of the run leaves them alone.

A version without such an evaluation gets one queued when it is promoted (on the eval set its run was
evaluated or imported on, else AUTO_EVAL_SET); `version_evidence` says whether its numbers are
measured, pending or missing.
"""

from __future__ import annotations

import logging

from django.conf import settings

from apps.core.errors import Conflict, Invalid
from apps.core.models import ACTIVE_JOB_STATUSES
from apps.evaluations.models import EvalSet, Evaluation, EvaluationSource, RegressionCheck
from apps.evaluations.regression import baseline_policy, gate_baseline, regression_check
from apps.evaluations.selectors import comparable_differences, comparable_to, weights_evidence
from apps.evaluations.services import evaluation_request_or_existing
from apps.registry.models import ModelVersion

logger = logging.getLogger(__name__)


def version_metrics_evaluation(version: ModelVersion) -> Evaluation | None:
    """The evaluation a version's metrics should come from now: the newest evidence of its weights that
    is comparable with what it shows (or, when it shows nothing yet, the newest evidence at all)."""
    evidence = weights_evidence(run_id=version.source_run_id, checkpoint_step=version.checkpoint_step)
    current = version.metrics_evaluation
    if current is not None:
        evidence = evidence.filter(**comparable_to(current))
    return evidence.first()


def model_version_refresh_metrics(*, evaluation_id, status: str) -> int:
    """After an evaluation lands: the versions whose weights it measured take its metrics when it is
    the newest comparable evidence of them."""
    if status != "completed":
        return 0
    evaluation = Evaluation.objects.filter(pk=evaluation_id, source=EvaluationSource.SERVER).first()
    if evaluation is None or evaluation.run_id is None:
        return 0
    updated = 0
    for version in ModelVersion.objects.filter(source_run_id=evaluation.run_id,
                                               checkpoint_step=evaluation.checkpoint_step
                                               ).select_related("metrics_evaluation"):
        chosen = version_metrics_evaluation(version)
        if chosen is not None and chosen.pk != version.metrics_evaluation_id:
            ModelVersion.objects.filter(pk=version.pk).update(metrics=chosen.metrics, metrics_evaluation=chosen)
            updated += 1
    return updated


def version_evidence_queue(version: ModelVersion, *, user=None) -> Evaluation | None:
    """Queue a server evaluation of the version's checkpoint on the whole eval set when it has no
    evidence yet (the identical one already queued is reused); None when it has evidence or no eval set
    is known."""
    if version.metrics_evaluation_id is not None:
        return None
    eval_set = _evidence_eval_set(version)
    if eval_set is None:
        return None
    request = {"eval_set": eval_set, "checkpoint_step": version.checkpoint_step}
    try:
        return evaluation_request_or_existing(run=version.source_run, data=request, user=user)[0]
    except (Invalid, Conflict) as exc:
        logger.warning("no evaluation queued for %s: %s", version, exc.message)
        return None


def _evidence_eval_set(version: ModelVersion) -> str | None:
    """The eval set the run was last evaluated (or imported) on, else its auto eval set, if loaded."""
    run = version.source_run
    latest = run.evaluations.filter(status="completed").order_by("-finished_at").values_list("eval_set_id", flat=True)
    for candidate in (*latest[:1], run.auto_eval_set, settings.AUTO_EVAL_SET):
        if candidate and EvalSet.objects.filter(pk=candidate).exists():
            return candidate
    return None


def version_evidence(version: ModelVersion) -> dict:
    """`measured` (metrics from a server evaluation of its checkpoint), `pending` (one is queued or
    running) or `none`, with the evaluation's id."""
    if version.metrics_evaluation_id is not None:
        return {"status": "measured", "evaluation_id": version.metrics_evaluation_id}
    pending = (Evaluation.objects.filter(run_id=version.source_run_id, checkpoint_step=version.checkpoint_step,
                                         source=EvaluationSource.SERVER, status__in=ACTIVE_JOB_STATUSES,
                                         section="", limit__isnull=True)
               .order_by("-queued_at").values_list("pk", flat=True).first())
    if pending is not None:
        return {"status": "pending", "evaluation_id": pending}
    return {"status": "none", "evaluation_id": None}


# --- the champion gate ---------------------------------------------------------------------------

def champion_check(*, model, champion: ModelVersion, candidate: ModelVersion, user=None) -> RegressionCheck:
    """The regression check a champion move rests on: server evaluations of both versions' own
    checkpoints on the whole eval set, comparable with each other, against the system's gate baseline
    at the champion's evaluation. A stored check is reused only if it was decided under the policy in
    force now (CHAMPION_TOLERANCE and CHAMPION_DECISION are read at check time)."""
    base, current = _gate_pair(champion, candidate)
    baseline = gate_baseline(scope=f"model:{model.pk}:champion", evaluation=base)
    policy = baseline_policy(baseline)
    for stored in RegressionCheck.objects.filter(baseline=baseline, evaluation=current).order_by("-created_at"):
        if all(stored.details.get(key) == value for key, value in policy.items()):
            return stored
    return regression_check(baseline=baseline, evaluation=current, user=user)


def _gate_pair(champion: ModelVersion, candidate: ModelVersion) -> tuple[Evaluation, Evaluation]:
    champion_evidence = weights_evidence(run_id=champion.source_run_id, checkpoint_step=champion.checkpoint_step)
    candidate_evidence = list(weights_evidence(run_id=candidate.source_run_id,
                                               checkpoint_step=candidate.checkpoint_step)[:50])
    for current in candidate_evidence:
        base = champion_evidence.filter(**comparable_to(current)).first()
        if base is not None:
            return base, current
    base = champion_evidence.first()
    if base is None:
        raise Conflict(f"The champion {champion} has no server evaluation of its checkpoint (step "
                       f"{champion.checkpoint_step}) on a whole eval set; evaluate it first.",
                       code="needs_evaluation", extra={"evaluate": _evaluate_url(champion)})
    why = (f"; its newest differs in {', '.join(comparable_differences(base, candidate_evidence[0]))}"
           if candidate_evidence else "")
    raise Conflict(f"{candidate} has no server evaluation of its checkpoint (step {candidate.checkpoint_step}) "
                   f"comparable with the champion's on {base.eval_set_id} (all items, judges {base.judge_key})"
                   f"{why}; evaluate it with the same settings first.", code="needs_evaluation",
                   extra={"evaluate": _evaluate_url(candidate), "eval_set": base.eval_set_id})


def _evaluate_url(version: ModelVersion) -> str:
    from django.urls import reverse

    return reverse("model-version-evaluate", kwargs={"version_id": version.pk})
