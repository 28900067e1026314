"""Trainers create, start and cancel sweeps; viewers see them."""

from django.db import migrations

from apps.core.migration_helpers import grant_permissions


class Migration(migrations.Migration):
    dependencies = [("runs", "0003_sweeps")]

    operations = [grant_permissions("runs", {"trainer": ["add_sweepjob", "view_sweepjob", "view_sweeptrial"],
                                             "viewer": ["view_sweepjob", "view_sweeptrial"]})]
