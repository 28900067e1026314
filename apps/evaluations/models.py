"""Evaluations (SPEC §5): every score traced to the predictions that made it.

An `EvalSet` is immutable like a dataset version (its items are stored here, loaded from
`datasets/<name>/` by `seed_datasets`, with the content hash of the file). An `Evaluation` is a
background job (apps.core.models.Job) that generates an answer for every item from one checkpoint
of a run and scores it with versioned judges; one `Prediction` per item (unique, so a resumed job
never stores an item twice). Metrics are computed from the stored predictions. Regression baselines
name a metric of a source evaluation; every check against one is stored with its evidence.
"""

import uuid

from django.conf import settings
from django.db import models

from apps.core.models import Job
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


class Evaluation(Job):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    run = models.ForeignKey(TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="evaluations")
    checkpoint_step = models.PositiveIntegerField(null=True, blank=True, help_text="None: the latest checkpoint")
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


class RegressionBaseline(models.Model):
    TOLERANCE_MODES = [("absolute", "absolute"), ("relative", "relative")]

    name = models.CharField(max_length=120, unique=True)
    metric = models.CharField(max_length=200, help_text="a metrics key, e.g. answer_accuracy or "
                                                        "by_category.arithmetic.answer_accuracy")
    eval_set = models.ForeignKey(EvalSet, on_delete=models.PROTECT, related_name="baselines")
    evaluation = models.ForeignKey(Evaluation, on_delete=models.PROTECT, related_name="baselines")
    lower_is_better = models.BooleanField(default=False)
    tolerance = models.FloatField(default=0.0)
    tolerance_mode = models.CharField(max_length=8, choices=TOLERANCE_MODES, default="absolute")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=models.Q(tolerance__gte=0), name="baseline_tolerance_gte_0")]

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
