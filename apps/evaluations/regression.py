"""Regression writes (SPEC §5): baselines, and checks of an evaluation against one.

A check compares only comparable evaluations: the same eval-set content, judges, slice (section and
limit) and source as the baseline's evaluation; anything else is a 409 naming the difference, never a
number. `decision: point` compares the point values within the tolerance; `paired_ci` passes only when
the paired 95 % interval of the per-item difference stays within the tolerance on the worse side (a
non-inferiority test: the candidate must show it is not worse by more than the tolerance). Every check
stores its paired items and the minimum detectable effect, so a pass on few items reads as what it is.

The champion gate's baselines (`champion_gate`) belong to the system: `gate_baseline` creates them,
no request can, and their tolerance and decision come from settings at check time.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.core.authentication import author
from apps.core.errors import Conflict, Invalid, NotFound
from apps.core.lookups import as_uuid
from apps.core.models import JobStatus
from apps.core.validation import validated
from apps.evaluations.models import BaselineKind, Evaluation, RegressionBaseline, RegressionCheck
from apps.evaluations.requests import BaselineRequestSerializer, CheckRequestSerializer
from apps.evaluations.selectors import (
    baselines_visible_to,
    comparable_differences,
    comparable_to,
    describe_differences,
    evaluations_visible_to,
    metric_value,
    paired_item_values,
)
from apps.runs.models import TrainingRun
from apps.runs.selectors import runs_visible_to
from training.stats import minimum_detectable_effect, paired_bootstrap_ci

GATE_NAME_PREFIX = "gate:"


# --- baselines -----------------------------------------------------------------------------------

def baseline_create(*, data, user=None) -> RegressionBaseline:
    """Validate a baseline (BaselineRequestSerializer) on a completed evaluation the caller may see."""
    values = validated(BaselineRequestSerializer, data)
    errors: dict = {}
    evaluation = _evaluation_for(user, values["evaluation_id"], errors)
    name, metric, decision = values["name"], values["metric"], values["decision"]
    if name.startswith(GATE_NAME_PREFIX):
        errors["name"] = [f"Names starting with {GATE_NAME_PREFIX!r} belong to the champion gate; use another."]
    elif RegressionBaseline.objects.filter(name=name).exists():
        errors["name"] = [f"A baseline named {name!r} exists; baselines are immutable, use another name."]
    if evaluation is not None and metric_value(evaluation.metrics, metric) is None:
        errors["metric"] = [f"The evaluation has no numeric metric {metric!r} (e.g. answer_accuracy, "
                            "format_compliance, by_category.<name>.answer_accuracy)."]
    if decision == "paired_ci" and not _pairable(metric):
        errors["decision"] = [f"paired_ci needs a per-item metric (answer_accuracy, format_compliance, "
                              f"reasoning_check_rate, overall or by_<group>.<value>.), not {metric!r}."]
    if errors:
        raise Invalid(errors)
    return RegressionBaseline.objects.create(
        name=name, metric=metric, eval_set=evaluation.eval_set, evaluation=evaluation,
        lower_is_better=values["lower_is_better"], tolerance=values["tolerance"],
        tolerance_mode=values["tolerance_mode"], decision=decision, created_by=author(user))


def _pairable(metric: str) -> bool:
    *group, rate = metric.split(".")
    return rate in ("answer_accuracy", "format_compliance", "reasoning_check_rate") and (
        not group or (len(group) == 2 and group[0].startswith("by_")))


def _evaluation_for(user, evaluation_id: str, errors: dict, key: str = "evaluation_id") -> Evaluation | None:
    """A completed evaluation the caller may see; unknown and out of reach are the same 404."""
    evaluations = evaluations_visible_to(user) if user is not None else Evaluation.objects.all()
    evaluation = evaluations.filter(pk=evaluation_id).select_related("eval_set").first() \
        if as_uuid(evaluation_id) else None
    if evaluation is None:
        raise NotFound(f"No evaluation {evaluation_id!r}.", extra={"field": key})
    if evaluation.status != JobStatus.COMPLETED:
        errors[key] = [f"Evaluation {evaluation.pk} is {evaluation.status}, not completed."]
        return None
    return evaluation


def gate_baseline(*, scope: str, evaluation: Evaluation) -> RegressionBaseline:
    """The system's baseline guarding `scope` (e.g. "model:3:champion") at `evaluation`: found by kind,
    scope and evaluation, never by a name, so a baseline a user created cannot stand in for it."""
    rows = RegressionBaseline.objects.filter(kind=BaselineKind.CHAMPION_GATE, gate_scope=scope,
                                             evaluation=evaluation)
    baseline = rows.first()
    if baseline is not None:
        return baseline
    try:
        with transaction.atomic():
            return RegressionBaseline.objects.create(
                kind=BaselineKind.CHAMPION_GATE, gate_scope=scope, evaluation=evaluation, eval_set=evaluation.eval_set,
                name=f"{GATE_NAME_PREFIX}{scope}:{evaluation.pk}", metric="answer_accuracy",
                tolerance=settings.CHAMPION_TOLERANCE, decision=settings.CHAMPION_DECISION)
    except IntegrityError:
        return rows.get()  # a concurrent move created it first


def baseline_policy(baseline: RegressionBaseline) -> dict:
    """How a check against `baseline` decides. The gate's policy is read from settings now, so a
    changed CHAMPION_TOLERANCE or CHAMPION_DECISION takes effect at the next check."""
    if baseline.kind == BaselineKind.CHAMPION_GATE:
        return {"tolerance": settings.CHAMPION_TOLERANCE, "tolerance_mode": "absolute",
                "decision": settings.CHAMPION_DECISION, "lower_is_better": False}
    return {"tolerance": baseline.tolerance, "tolerance_mode": baseline.tolerance_mode,
            "decision": baseline.decision, "lower_is_better": baseline.lower_is_better}


# --- checks --------------------------------------------------------------------------------------

def regression_check(*, baseline: RegressionBaseline, evaluation: Evaluation, user=None) -> RegressionCheck:
    """Compare `evaluation` with the baseline's evaluation on the baseline's metric; stored, with the
    paired bootstrap interval of the per-item difference and the minimum detectable effect."""
    if evaluation.status != JobStatus.COMPLETED:
        raise Invalid({"evaluation_id": [f"Evaluation {evaluation.pk} is {evaluation.status}, not completed."]})
    differences = comparable_differences(baseline.evaluation, evaluation)
    if differences:
        raise Conflict(f"Evaluation {evaluation.pk} is not comparable with the baseline's evaluation "
                       f"{baseline.evaluation_id}: {describe_differences(differences)}.", code="not_comparable",
                       extra={"differences": differences})
    current = metric_value(evaluation.metrics, baseline.metric)
    if current is None:
        raise Invalid({"evaluation_id": [f"Evaluation {evaluation.pk} has no metric {baseline.metric!r}."]})
    policy = baseline_policy(baseline)
    base_value = metric_value(baseline.evaluation.metrics, baseline.metric)
    paired = paired_item_values(baseline.evaluation, evaluation, baseline.metric)
    interval = paired_bootstrap_ci(*paired) if paired and paired[0] else None
    if policy["decision"] == "paired_ci" and interval is None:
        raise Conflict(f"The baseline decides on the paired interval, but {baseline.metric!r} pairs no items of "
                       f"evaluation {evaluation.pk}.", code="no_paired_items")
    verdict = _decide(policy, base_value, current, interval)
    return RegressionCheck.objects.create(
        baseline=baseline, evaluation=evaluation, metric=baseline.metric, result=verdict["result"],
        baseline_value=base_value, current_value=current, delta=current - base_value,
        delta_pct=((current - base_value) / base_value * 100) if base_value else None,
        paired_ci_low=interval[0] if interval else None, paired_ci_high=interval[1] if interval else None,
        paired_items=len(paired[0]) if paired else 0, decision=policy["decision"],
        minimum_detectable_effect=minimum_detectable_effect(*paired) if paired else None,
        details={**policy, "allowed_regression": verdict["allowed"], "worse_by": verdict["worse_by"],
                 "baseline_kind": baseline.kind, "baseline_evaluation": str(baseline.evaluation_id)},
        created_by=author(user))


def _decide(policy: dict, base_value: float, current: float, interval) -> dict:
    """`worse_by` is how much worse the current value is (point), or could be at the pessimistic end
    of the paired interval (paired_ci); it fails when that exceeds the allowed regression."""
    allowed = policy["tolerance"] * (abs(base_value) if policy["tolerance_mode"] == "relative" else 1.0)
    if policy["decision"] == "paired_ci":
        worse_by = interval[1] if policy["lower_is_better"] else -interval[0]
    else:
        delta = current - base_value
        worse_by = delta if policy["lower_is_better"] else -delta
    return {"result": "fail" if worse_by > allowed + 1e-12 else "pass", "allowed": allowed, "worse_by": worse_by}


def regression_check_request(*, data, user=None) -> RegressionCheck:
    """`{"baseline": name, "evaluation_id": …}` or `{"baseline": name, "run_id": …}` (the run's latest
    completed evaluation comparable with the baseline's) → a stored check. A baseline, evaluation or run
    the caller cannot see is 404, like an unknown one."""
    data = validated(CheckRequestSerializer, data)
    baselines = baselines_visible_to(user) if user is not None else RegressionBaseline.objects.all()
    baseline = baselines.select_related("evaluation").filter(name=data["baseline"]).first()
    if baseline is None:
        raise NotFound(f"No regression baseline named {data['baseline']!r}.", extra={"field": "baseline"})
    if "evaluation_id" in data:
        errors: dict = {}
        evaluation = _evaluation_for(user, data["evaluation_id"], errors)
        if errors:
            raise Invalid(errors)
    else:
        evaluation = _comparable_evaluation_of_run(user, data["run_id"], baseline)
    return regression_check(baseline=baseline, evaluation=evaluation, user=user)


def _comparable_evaluation_of_run(user, run_id, baseline: RegressionBaseline) -> Evaluation:
    """The run's latest completed evaluation comparable with the baseline's; a run whose evaluations
    are all of another slice, judge set or source is a 409 naming how its latest one differs."""
    runs = runs_visible_to(user) if user is not None else TrainingRun.objects.all()
    if not as_uuid(run_id) or not runs.filter(pk=run_id).exists():
        raise NotFound(f"No run {run_id!r}.", extra={"field": "run_id"})
    completed = Evaluation.objects.filter(run_id=run_id, status=JobStatus.COMPLETED).order_by("-finished_at")
    evaluation = completed.filter(**comparable_to(baseline.evaluation)).first()
    if evaluation is not None:
        return evaluation
    latest = completed.first()
    if latest is None:
        raise Conflict(f"Run {run_id} has no completed evaluation.", code="needs_evaluation")
    differences = comparable_differences(baseline.evaluation, latest)
    raise Conflict(f"Run {run_id} has no evaluation comparable with baseline {baseline.name!r}; its latest "
                   f"({latest.pk}) differs in {describe_differences(differences)}.", code="not_comparable",
                   extra={"differences": differences})
