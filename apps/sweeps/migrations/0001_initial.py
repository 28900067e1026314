"""Sweeps move out of the runs app into their own, above evaluations. The tables stay as they are
(`runs_sweepjob`, `runs_sweeptrial`): only Django's state moves, and the content types (with the
permissions and group grants that hang on them) are relabelled, so no grant is lost."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def relabel_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="runs", model__in=["sweepjob", "sweeptrial"]).update(app_label="sweeps")


def restore_content_types(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="sweeps", model__in=["sweepjob", "sweeptrial"]).update(app_label="runs")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("datasets", "0005_job_dispatched_at"),
        ("runs", "0006_job_dispatched_at"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name="SweepJob",
                fields=[
                    ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                    ("name", models.CharField(blank=True, default="", max_length=120)),
                    ("base_config", models.JSONField()),
                    ("search_space", models.JSONField(
                        help_text='{param: {"type": choice|uniform|loguniform|randint, …}}')),
                    ("metric", models.CharField(default="answer_accuracy", max_length=200,
                                                help_text="an evaluation metric (e.g. answer_accuracy) or final_loss")),
                    ("direction", models.CharField(default="maximize", max_length=8)),
                    ("n_trials", models.PositiveIntegerField()),
                    ("max_concurrent", models.PositiveIntegerField(default=1)),
                    ("seed", models.BigIntegerField(default=0)),
                    ("eval_set", models.CharField(blank=True, default="", max_length=200)),
                    ("eval_limit", models.PositiveIntegerField(blank=True, null=True)),
                    ("status", models.CharField(choices=[("created", "created"), ("running", "running"),
                                                         ("completed", "completed"), ("cancelled", "cancelled"),
                                                         ("failed", "failed")],
                                                db_index=True, default="created", max_length=10)),
                    ("error", models.TextField(blank=True, default="")),
                    ("created_at", models.DateTimeField(auto_now_add=True)),
                    ("started_at", models.DateTimeField(blank=True, null=True)),
                    ("finished_at", models.DateTimeField(blank=True, null=True)),
                    ("created_by", models.ForeignKey(blank=True, null=True,
                                                     on_delete=django.db.models.deletion.SET_NULL,
                                                     related_name="sweeps", to=settings.AUTH_USER_MODEL)),
                    ("dataset_version", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT,
                                                          related_name="sweeps", to="datasets.datasetversion")),
                ],
                options={"db_table": "runs_sweepjob", "ordering": ["-created_at"]},
            ),
            migrations.CreateModel(
                name="SweepTrial",
                fields=[
                    ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                               verbose_name="ID")),
                    ("number", models.PositiveIntegerField()),
                    ("params", models.JSONField()),
                    ("state", models.CharField(choices=[("running", "running"), ("complete", "complete"),
                                                        ("failed", "failed"), ("cancelled", "cancelled")],
                                               default="running", max_length=10)),
                    ("value", models.FloatField(blank=True, null=True)),
                    ("error", models.TextField(blank=True, default="")),
                    ("created_at", models.DateTimeField(auto_now_add=True)),
                    ("finished_at", models.DateTimeField(blank=True, null=True)),
                    ("run", models.OneToOneField(on_delete=django.db.models.deletion.PROTECT,
                                                 related_name="sweep_trial", to="runs.trainingrun")),
                    ("sweep", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="trials",
                                                to="sweeps.sweepjob")),
                ],
                options={"db_table": "runs_sweeptrial", "ordering": ["sweep", "number"]},
            ),
            migrations.AddField(
                model_name="sweepjob",
                name="best_trial",
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                        related_name="+", to="sweeps.sweeptrial"),
            ),
            migrations.AddConstraint(
                model_name="sweeptrial",
                constraint=models.UniqueConstraint(fields=("sweep", "number"), name="sweeptrial_number_unique"),
            ),
        ], database_operations=[]),
        migrations.RunPython(relabel_content_types, restore_content_types),
    ]
