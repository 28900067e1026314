"""Dataset versions (SPEC §3): immutable, content-hashed selections of traces.

A version freezes the exact bytes of every trace it holds: `DatasetItem.line` is the canonical
`trace` export line, so editing a trace after a build never changes a built version, its exports
or its hash. The on-disk copy (`DATASETS_DIR/<id>/manifest.json` + `data.jsonl`) mirrors the rows.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import ACTIVE_JOB_STATUSES, Job
from apps.traces.models import Trace


class Split(models.TextChoices):
    TRAIN = "train", "train"
    VAL = "val", "val"
    TEST = "test", "test"


class DatasetVersion(models.Model):
    id = models.CharField(primary_key=True, max_length=200, help_text="{name}-{version}")
    name = models.CharField(max_length=120, db_index=True)
    version = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="dataset_versions"
    )
    content_hash = models.CharField(max_length=64, db_index=True, help_text="sha256 of data.jsonl")
    selection_strategy = models.CharField(max_length=16)
    trace_count = models.PositiveIntegerField()
    train_count = models.PositiveIntegerField()
    val_count = models.PositiveIntegerField()
    test_count = models.PositiveIntegerField()
    session_id = models.CharField(max_length=200, blank=True, default="", db_index=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    stats = models.JSONField(default=dict, help_text="manifest.stats, kept beside it so lists need not load manifests")
    manifest = models.JSONField()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="datasetversion_name_version_unique"),
            models.CheckConstraint(
                condition=models.Q(trace_count=models.F("train_count") + models.F("val_count")
                                   + models.F("test_count")),
                name="datasetversion_splits_add_up",
            ),
        ]

    def __str__(self):
        return self.id

    @property
    def split_counts(self) -> dict:
        return {"train": self.train_count, "val": self.val_count, "test": self.test_count}


class DatasetItem(models.Model):
    """One trace at one position of a version, with its split and frozen export line."""

    # No separate index: the (dataset, position) unique constraint covers lookups by dataset.
    dataset = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items", db_index=False)
    position = models.PositiveIntegerField()
    # PROTECT: a trace that is part of a frozen version cannot disappear from under it.
    trace = models.ForeignKey(Trace, on_delete=models.PROTECT, related_name="dataset_items")
    split = models.CharField(max_length=5, choices=Split.choices)
    line = models.TextField(help_text="The canonical `trace` export line (without the newline).")

    class Meta:
        ordering = ["dataset", "position"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "position"], name="datasetitem_position_unique"),
            models.UniqueConstraint(fields=["dataset", "trace"], name="datasetitem_trace_unique"),
        ]
        indexes = [models.Index(fields=["dataset", "split", "position"], name="datasetitem_split_order")]

    def __str__(self):
        return f"{self.dataset_id}[{self.position}] {self.split}"


class DatasetBuild(Job):
    """A build running in the background (SPEC §3): large builds answer 202 and point here.

    `request` is the validated build request; the worker selects and freezes again from it, as the
    requesting user. At most one build per dataset id is active at a time (a partial unique
    constraint), so two identical requests share one job.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset_id = models.CharField(max_length=200, help_text="the {name}-{version} being built")
    request = models.JSONField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="dataset_builds"
    )
    actor_label = models.CharField(max_length=200, blank=True, default="")
    dataset_version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                        related_name="builds")
    created_version = models.BooleanField(null=True, help_text="False: the id already held this content")

    class Meta(Job.Meta):
        ordering = ["-queued_at"]
        indexes = [*Job.Meta.indexes, models.Index(fields=["dataset_id", "-queued_at"], name="datasetbuild_dataset")]
        constraints = [
            *Job.Meta.constraints,
            models.UniqueConstraint(fields=["dataset_id"], condition=models.Q(status__in=ACTIVE_JOB_STATUSES),
                                    name="datasetbuild_one_active_per_dataset"),
        ]

    def __str__(self):
        return f"build {self.dataset_id} [{self.status}]"
