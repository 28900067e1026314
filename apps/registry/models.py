"""The model registry (SPEC §6): named models, versions promoted from completed runs, aliases.

A `ModelVersion` copies its run's output (the latest checkpoint, run config and manifest, tokenizer
files) into content-addressed storage, the artifact store's registry/blobs (deduplicated by sha256); its
`files` rows list what it holds. Provenance (run, dataset version + hash, config hash, code version)
is frozen at promotion; `metrics` follow the run's latest evaluation. An alias points at one version;
every move is an `AliasEvent` with its evidence (a regression check, or a superuser's forced reason).
"""

import re
import uuid

from django.conf import settings
from django.db import models

from apps.datasets.models import DatasetVersion
from apps.evaluations.models import Evaluation, RegressionCheck
from apps.runs.models import TrainingRun

# A model's name: what `/api/models/{name}` routes match (a numeric ref is the id instead).
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,119}")


class RegisteredModel(models.Model):
    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="registered_models")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ModelVersion(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="versions")
    label = models.CharField(max_length=64)
    number = models.PositiveIntegerField(help_text="promotion order within the model")
    source_run = models.ForeignKey(TrainingRun, on_delete=models.PROTECT, related_name="model_versions")
    checkpoint_step = models.PositiveIntegerField()
    backend = models.CharField(max_length=16)
    model_preset = models.CharField(max_length=64)
    config = models.JSONField()
    config_hash = models.CharField(max_length=64)
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="model_versions")
    dataset_content_hash = models.CharField(max_length=64)
    code_version = models.JSONField(default=dict)
    # A Tunix run's base weights and tokenizer (apps.registry.integrity); empty for builtin runs.
    base_weights_sha256 = models.CharField(max_length=64, blank=True, default="")
    tokenizer_sha256 = models.CharField(max_length=64, blank=True, default="")
    base_model_dir = models.CharField(max_length=500, blank=True, default="",
                                      help_text="the base weights' folder as the run names it (run or models folder)")
    base_weights_included = models.BooleanField(default=False, help_text="the weights are among the version's files")
    size_bytes = models.BigIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True)
    metrics_evaluation = models.ForeignKey(Evaluation, null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["model", "label"], name="modelversion_label_unique"),
            models.UniqueConstraint(fields=["model", "number"], name="modelversion_number_unique"),
            # Promoting the same run twice is the same version.
            models.UniqueConstraint(fields=["model", "source_run"], name="modelversion_one_per_run"),
        ]

    def __str__(self):
        return f"{self.model.name} {self.label}"


class Blob(models.Model):
    """One stored file content, by sha256 (the registry keeps each content once)."""

    sha256 = models.CharField(max_length=64, primary_key=True)
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class ModelVersionFile(models.Model):
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="files", db_index=False)
    path = models.CharField(max_length=500, help_text="relative path in the version's folder layout")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="files")

    class Meta:
        ordering = ["version", "path"]
        constraints = [models.UniqueConstraint(fields=["version", "path"], name="modelversionfile_path_unique")]


class ModelAlias(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="modelalias_name_unique")]

    def __str__(self):
        return f"{self.model.name}@{self.name}"


class AliasEvent(models.Model):
    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="alias_events")
    alias = models.CharField(max_length=64)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    actor_label = models.CharField(max_length=200, blank=True, default="")
    regression_check = models.ForeignKey(RegressionCheck, null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="+")
    forced = models.BooleanField(default=False)
    outcome = models.CharField(max_length=8, default="moved", help_text="moved, or refused (and why, in reason)")
    reason = models.TextField(blank=True, default="")
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
