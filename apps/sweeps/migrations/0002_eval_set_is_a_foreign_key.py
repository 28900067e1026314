"""A sweep's eval set becomes a foreign key (it was a string, because runs could not point at evaluations).
Sweeps scored on final_loss stored an empty string; they get NULL. The column keeps its name."""

import django.db.models.deletion
from django.db import migrations, models


def empty_to_null(apps, schema_editor):
    apps.get_model("sweeps", "SweepJob").objects.filter(eval_set="").update(eval_set=None)


def null_to_empty(apps, schema_editor):
    apps.get_model("sweeps", "SweepJob").objects.filter(eval_set__isnull=True).update(eval_set="")


class Migration(migrations.Migration):

    dependencies = [
        ("evaluations", "0005_cancel_and_dispatched_at"),
        ("sweeps", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(model_name="sweepjob", name="eval_set",
                              field=models.CharField(blank=True, max_length=200, null=True)),
        migrations.RunPython(empty_to_null, null_to_empty),
        migrations.AlterField(
            model_name="sweepjob", name="eval_set",
            field=models.ForeignKey(blank=True, db_column="eval_set", null=True,
                                    help_text="the eval set trials are scored on (none: final_loss)",
                                    on_delete=django.db.models.deletion.PROTECT, related_name="sweeps",
                                    to="evaluations.evalset")),
    ]
