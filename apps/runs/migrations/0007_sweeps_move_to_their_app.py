"""Sweeps now live in apps.sweeps (its 0001 takes over the tables and content types); the runs app only
forgets them."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("runs", "0006_job_dispatched_at"),
        ("sweeps", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.RemoveField(model_name="sweepjob", name="best_trial"),
            migrations.DeleteModel(name="SweepTrial"),
            migrations.DeleteModel(name="SweepJob"),
        ], database_operations=[]),
    ]
