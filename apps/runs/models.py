"""Training runs (SPEC §4): a queued job that trains one config on one dataset version.

The row is the truth (apps.core.models.Job): status, attempts, heartbeat, cancel flag. What the
trainer reports is relayed into `RunLogLine` and `RunMetric` rows (unique per run and seq / step,
so a resumed attempt that replays steps updates them instead of adding twins) and, when it ends,
its files into `RunArtifact` rows with their size and sha256.
"""

import uuid

from django.conf import settings
from django.db import models

from apps.core.models import Job
from apps.datasets.models import DatasetVersion

# The per-step values a trainer reports and a RunMetric row stores in columns (besides its step); any
# other number a step reports (GRPO's rewards, KL, lengths, timings) is kept in the row's `values`.
METRIC_FIELDS = ("loss", "lr", "grad_norm", "tokens_per_s", "eval_loss")


class Algorithm(models.TextChoices):
    SFT = "sft", "supervised fine-tuning"
    GRPO = "grpo", "GRPO (reinforcement learning from the judges)"


class TrainingRun(Job):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="training_runs")
    dataset_content_hash = models.CharField(max_length=64)
    split = models.CharField(max_length=5, default="train", help_text="the dataset split trained on")
    config = models.JSONField(help_text="the validated TrainConfig")
    config_hash = models.CharField(max_length=64, db_index=True)
    backend = models.CharField(max_length=16)
    model = models.CharField(max_length=64, help_text="the model preset")
    seed = models.BigIntegerField()
    max_steps = models.PositiveIntegerField()
    algorithm = models.CharField(max_length=8, choices=Algorithm.choices, default=Algorithm.SFT)
    # The weights the run starts from (None: from scratch, or base Gemma weights): a completed run and one of
    # its checkpoints. `init_from` records what the client asked (a model version or a run) and what the
    # parent was (its config hash, model preset, tokenizer, context length), as lineage reads it.
    init_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    init_step = models.PositiveIntegerField(null=True, blank=True)
    init_from = models.JSONField(default=dict, blank=True)
    auto_evaluate = models.BooleanField(default=True, help_text="queue an evaluation of the final checkpoint")
    auto_eval_set = models.CharField(max_length=200, blank=True, default="",
                                     help_text="the eval set of that evaluation (blank: AUTO_EVAL_SET)")
    auto_eval_limit = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="training_runs")
    # Filled in by the launcher from the trainer's events and run manifest.
    steps_completed = models.PositiveIntegerField(default=0)
    final_loss = models.FloatField(null=True, blank=True)
    final_metrics = models.JSONField(default=dict, blank=True)
    mfu_estimate = models.FloatField(null=True, blank=True, help_text="6·N FLOPs per token over the device peak")
    tokens_per_s = models.FloatField(null=True, blank=True)
    code_version = models.JSONField(default=dict, blank=True)
    device = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    first_step_at = models.DateTimeField(null=True, blank=True)
    imported = models.BooleanField(default=False, help_text="trained elsewhere (e.g. the Kaggle notebook) and imported")

    class Meta(Job.Meta):
        ordering = ["-queued_at", "-id"]
        indexes = [
            *Job.Meta.indexes,
            models.Index(fields=["-queued_at", "-id"], name="run_list_order"),
            models.Index(fields=["status", "-queued_at"], name="run_status_created"),
            models.Index(fields=["dataset_version", "-queued_at"], name="run_dataset_created"),
            models.Index(fields=["backend", "-queued_at"], name="run_backend_created"),
        ]
        permissions = [("cancel_trainingrun", "Can cancel training runs")]

    def __str__(self):
        return f"{self.model} on {self.dataset_version_id} [{self.status}]"

    @property
    def folder_name(self) -> str:
        return str(self.id)


class RunLogLine(models.Model):
    """One line of a run's log: the trainer's `log` events, its stderr, and the launcher's own notes."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="log_lines", db_index=False)
    seq = models.PositiveIntegerField()
    stream = models.CharField(max_length=16)  # trainer | stderr | launcher
    text = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="runlogline_one_per_seq")]


class RunMetric(models.Model):
    """The trainer's per-step metrics; one row per run and step (a replayed step overwrites)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="metrics", db_index=False)
    step = models.PositiveIntegerField()
    loss = models.FloatField(null=True)
    lr = models.FloatField(null=True)
    grad_norm = models.FloatField(null=True)
    tokens_per_s = models.FloatField(null=True)
    eval_loss = models.FloatField(null=True)
    values = models.JSONField(default=dict, blank=True, help_text="the step's other numbers, by name")
    at = models.DateTimeField()

    class Meta:
        ordering = ["run", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="runmetric_one_per_step")]


class RunArtifact(models.Model):
    """A file the run left in its folder, named by its path relative to the run's output folder."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="artifacts", db_index=False)
    name = models.CharField(max_length=500)
    kind = models.CharField(max_length=32)  # checkpoint | metrics | manifest | config | tokenizer | other
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "name"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="runartifact_one_per_name")]

    def __str__(self):
        return self.name
