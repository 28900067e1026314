"""Trainers start, cancel and see every run; viewers see every run; contributors get nothing here."""

from django.db import migrations

from apps.core.migration_helpers import grant_permissions

READ = ["view_trainingrun", "view_runlogline", "view_runmetric", "view_runartifact"]


class Migration(migrations.Migration):
    dependencies = [("runs", "0001_initial"), ("traces", "0002_groups")]

    operations = [grant_permissions("runs", {"trainer": [*READ, "add_trainingrun", "cancel_trainingrun"],
                                             "viewer": READ})]
