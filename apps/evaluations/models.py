"""Evaluations (SPEC §5): every score traced to the predictions that made it.

An `EvalSet` is immutable like a dataset version (its items are stored here, loaded from
`datasets/<name>/` by `seed_datasets`, with the content hash of the file). An `Evaluation` is a
background job (apps.core.models.Job) that generates an answer for every item from one checkpoint
of a run and scores it with versioned judges; one `Prediction` per item (unique, so a resumed job
never stores an item twice). Metrics are computed from the stored predictions. Regression baselines
name a metric of a source evaluation; every check against one is stored with its evidence.

`source` says where the outputs came from: `server` (generated here from stored weights) or
`imported` (reported by a client and judged here); imported evaluations rank only among themselves
and are never evidence for a regression gate or a model version. Two evaluations are comparable only
when their eval-set content, judges, slice (section, limit) and source are equal.
"""

import uuid

from django.conf import settings
from django.db import models

from apps.core.models import ACTIVE_JOB_STATUSES, Job
from apps.runs.models import TrainingRun


class EvalSet(models.Model):
    id = models.CharField(primary_key=True, max_length=200, help_text="{name}-{version}, e.g. eval-v1")
    name = models.CharField(max_length=120)
    version = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64, help_text="sha256 of items.jsonl")
    item_count = models.PositiveIntegerField()
    manifest = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return self.id


class EvalItem(models.Model):
    eval_set = models.ForeignKey(EvalSet, on_delete=models.CASCADE, related_name="items", db_index=False)
    item_id = models.CharField(max_length=200)
    position = models.PositiveIntegerField()
    prompt = models.TextField()
    expected_answer = models.TextField()
    category = models.CharField(max_length=64, blank=True, default="")
    difficulty = models.CharField(max_length=32, blank=True, default="")
    section = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["eval_set", "position"]
        constraints = [
            models.UniqueConstraint(fields=["eval_set", "position"], name="evalitem_position_unique"),
            models.UniqueConstraint(fields=["eval_set", "item_id"], name="evalitem_id_unique"),
        ]

    def __str__(self):
        return self.item_id

    def as_item(self) -> dict:
        """The item as the evaluation CLI reads it."""
        return {"id": self.item_id, "prompt": self.prompt, "expected_answer": self.expected_answer,
                "category": self.category, "difficulty": self.difficulty, "section": self.section}


class EvaluationSource(models.TextChoices):
    SERVER = "server", "server: generated here from stored weights"
    IMPORTED = "imported", "imported: outputs reported by a client, judged here"


class Evaluation(Job):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluations")
    checkpoint_step = models.PositiveIntegerField(
        null=True, blank=True, help_text="the checkpoint evaluated (None: not known; an import without one)")
    eval_set = models.ForeignKey(EvalSet, on_delete=models.PROTECT, related_name="evaluations")
    eval_set_hash = models.CharField(max_length=64, help_text="the eval set's content hash, for comparability")
    section = models.CharField(max_length=64, blank=True, default="", help_text="only items of this section")
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="only the first N items")
    judges = models.JSONField(help_text='[{"name", "version", …}] that scored it')
    judge_key = models.CharField(max_length=200, db_index=True,
                                 help_text="judges and versions as one string; ranking groups by it")
    generation = models.JSONField(default=dict, help_text="max_new_tokens, temperature, seed, batch_size")
    item_count = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    primary_score = models.FloatField(null=True, blank=True, help_text="answer accuracy")
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    auto = models.BooleanField(default=False, help_text="queued automatically when its run completed")
    source = models.CharField(max_length=8, choices=EvaluationSource.choices, default=EvaluationSource.SERVER,
                              db_index=True)
    request_key = models.CharField(max_length=64, blank=True, default="",
                                   help_text="sha256 of what was asked (run, step, eval set, slice, judges, "
                                             "generation); one active evaluation per key")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="evaluations")

    class Meta(Job.Meta):
        ordering = ["-queued_at", "-id"]
        indexes = [
            *Job.Meta.indexes,
            models.Index(fields=["eval_set_hash", "judge_key", "section", "-primary_score"], name="eval_leaderboard"),
            models.Index(fields=["run", "-queued_at"], name="eval_run_created"),
        ]
        permissions = [("cancel_evaluation", "Can cancel evaluations")]
        constraints = [
            *Job.Meta.constraints,
            # Identical requests while one is queued, running or being retried return that one.
            models.UniqueConstraint(fields=["request_key"], name="evaluation_one_active_per_request",
                                    condition=models.Q(status__in=ACTIVE_JOB_STATUSES) & ~models.Q(request_key="")),
            models.CheckConstraint(condition=models.Q(source__in=EvaluationSource.values),
                                   name="evaluation_source_valid"),
        ]

    def __str__(self):
        return f"{self.eval_set_id} on {self.run_id} [{self.status}]"


class Prediction(models.Model):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="predictions", db_index=False)
    item = models.ForeignKey(EvalItem, on_delete=models.PROTECT, related_name="predictions")
    raw_output = models.TextField()
    extracted_answer = models.TextField(null=True, blank=True)
    correct = models.BooleanField()
    format_ok = models.BooleanField()
    reasoning_ok = models.BooleanField(null=True)
    reasoning_details = models.JSONField(default=dict, blank=True)
    llm_judge = models.JSONField(null=True, blank=True, help_text="score, verdict, mode (mock|real), rubric hash")
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    stopped = models.BooleanField(null=True)
    latency_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["evaluation", "item__position"]
        constraints = [models.UniqueConstraint(fields=["evaluation", "item"], name="prediction_one_per_item")]
        indexes = [models.Index(fields=["evaluation", "correct"], name="prediction_eval_correct")]

    @classmethod
    def judged(cls, evaluation, item, output: str, scored: dict, *, tokens=None, stopped=None, latency_s=None,
               llm_judge=None) -> "Prediction":
        """The (unsaved) row of one output the shared judges scored: `scored` is training.judges'
        verdict (correct, format_ok, reasoning_ok, reasoning, extracted_answer), from the evaluator
        child or from this server."""
        return cls(evaluation=evaluation, item=item, raw_output=output, extracted_answer=scored.get("extracted_answer"),
                   correct=scored["correct"], format_ok=scored["format_ok"], reasoning_ok=scored.get("reasoning_ok"),
                   reasoning_details=scored.get("reasoning") or {}, llm_judge=llm_judge, output_tokens=tokens,
                   stopped=stopped, latency_s=latency_s)


class BaselineKind(models.TextChoices):
    USER = "user", "user: created through the API"
    CHAMPION_GATE = "champion_gate", "champion gate: the system's, one per model alias and champion evaluation"


class RegressionBaseline(models.Model):
    """A metric of one evaluation that later evaluations are checked against.

    `decision` `point` compares the point values; `paired_ci` passes only when the paired 95 % interval
    of the per-item difference stays within the tolerance on the worse side (non-inferiority). The
    champion gate's baselines are `champion_gate` rows keyed by `gate_scope` ("model:<id>:champion");
    no API request can create or pick one, and their tolerance and decision are read from settings at
    check time (CHAMPION_TOLERANCE, CHAMPION_DECISION)."""

    TOLERANCE_MODES = [("absolute", "absolute"), ("relative", "relative")]
    DECISIONS = [("point", "point"), ("paired_ci", "paired_ci")]

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=BaselineKind.choices, default=BaselineKind.USER, db_index=True)
    gate_scope = models.CharField(max_length=120, blank=True, default="",
                                  help_text="champion_gate only: which model alias the baseline guards")
    metric = models.CharField(max_length=200, help_text="a metrics key, e.g. answer_accuracy or "
                                                        "by_category.arithmetic.answer_accuracy")
    eval_set = models.ForeignKey(EvalSet, on_delete=models.PROTECT, related_name="baselines")
    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="baselines")
    lower_is_better = models.BooleanField(default=False)
    tolerance = models.FloatField(default=0.0)
    tolerance_mode = models.CharField(max_length=8, choices=TOLERANCE_MODES, default="absolute")
    decision = models.CharField(max_length=9, choices=DECISIONS, default="point")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(tolerance__gte=0), name="baseline_tolerance_gte_0"),
            models.CheckConstraint(condition=models.Q(decision__in=["point", "paired_ci"]),
                                   name="baseline_decision_valid"),
            # A gate baseline always names its scope; a user's never does.
            models.CheckConstraint(condition=models.Q(kind=BaselineKind.USER, gate_scope="")
                                   | (models.Q(kind=BaselineKind.CHAMPION_GATE) & ~models.Q(gate_scope="")),
                                   name="baseline_gate_scope_iff_gate"),
            models.UniqueConstraint(fields=["gate_scope", "evaluation"], name="baseline_one_gate_per_evaluation",
                                    condition=models.Q(kind=BaselineKind.CHAMPION_GATE)),
        ]

    def __str__(self):
        return self.name


class RegressionCheck(models.Model):
    baseline = models.ForeignKey(RegressionBaseline, on_delete=models.CASCADE, related_name="checks")
    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="regression_checks")
    result = models.CharField(max_length=4)  # pass | fail
    metric = models.CharField(max_length=200)
    baseline_value = models.FloatField()
    current_value = models.FloatField()
    delta = models.FloatField()
    delta_pct = models.FloatField(null=True)
    paired_ci_low = models.FloatField(null=True)
    paired_ci_high = models.FloatField(null=True)
    paired_items = models.PositiveIntegerField(default=0)
    decision = models.CharField(max_length=9, default="point", help_text="point or paired_ci: what decided it")
    minimum_detectable_effect = models.FloatField(null=True, help_text="the smallest true difference this many "
                                                                        "paired items detect with 80 % power")
    details = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=models.Q(result__in=["pass", "fail"]),
                                              name="regressioncheck_result_valid")]

    def __str__(self):
        return f"{self.baseline.name}: {self.result}"
