"""Hyperparameter sweeps (SPEC §6): trials are training runs (plus their evaluations) whose configs Optuna
samples from `search_space`; the trial rows are the study's memory.

This app sits above runs and evaluations (a trial's value is an evaluation metric), so it reads both
directly. The tables keep the names they had when sweeps lived in the runs app.
"""

import uuid

from django.conf import settings
from django.db import models

from apps.datasets.models import DatasetVersion
from apps.evaluations.models import EvalSet
from apps.runs.models import TrainingRun


class SweepJob(models.Model):
    STATUSES = [("created", "created"), ("running", "running"), ("completed", "completed"),
                ("cancelled", "cancelled"), ("failed", "failed")]

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120, blank=True, default="")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="sweeps")
    base_config = models.JSONField()
    search_space = models.JSONField(help_text='{param: {"type": choice|uniform|loguniform|randint, …}}')
    metric = models.CharField(max_length=200, default="answer_accuracy",
                              help_text="an evaluation metric (e.g. answer_accuracy) or final_loss")
    direction = models.CharField(max_length=8, default="maximize")
    n_trials = models.PositiveIntegerField()
    max_concurrent = models.PositiveIntegerField(default=1)
    seed = models.BigIntegerField(default=0)
    eval_set = models.ForeignKey(EvalSet, null=True, blank=True, on_delete=models.PROTECT, related_name="sweeps",
                                 db_column="eval_set", help_text="the eval set trials are scored on (none: final_loss)")
    eval_limit = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default="created", db_index=True)
    best_trial = models.ForeignKey("SweepTrial", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="sweeps")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "runs_sweepjob"
        ordering = ["-created_at"]

    def __str__(self):
        return self.name or f"sweep {str(self.id)[:8]}"


class SweepTrial(models.Model):
    STATES = [("running", "running"), ("complete", "complete"), ("failed", "failed"), ("cancelled", "cancelled")]

    sweep = models.ForeignKey(SweepJob, on_delete=models.CASCADE, related_name="trials")
    number = models.PositiveIntegerField()
    params = models.JSONField()
    run = models.OneToOneField(TrainingRun, on_delete=models.PROTECT, related_name="sweep_trial")
    state = models.CharField(max_length=10, choices=STATES, default="running")
    value = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "runs_sweeptrial"
        ordering = ["sweep", "number"]
        constraints = [models.UniqueConstraint(fields=["sweep", "number"], name="sweeptrial_number_unique")]

    def __str__(self):
        return f"trial {self.number} of {self.sweep_id}"
