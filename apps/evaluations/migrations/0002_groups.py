"""Trainers evaluate runs, set baselines and run checks; viewers read evaluations and baselines."""

from django.db import migrations

from apps.core.migration_helpers import grant_permissions

READ = ["view_evalset", "view_evalitem", "view_evaluation", "view_prediction", "view_regressionbaseline",
        "view_regressioncheck"]


class Migration(migrations.Migration):
    dependencies = [("evaluations", "0001_initial"), ("traces", "0002_groups")]

    operations = [grant_permissions("evaluations", {
        "trainer": [*READ, "add_evaluation", "add_regressionbaseline", "add_regressioncheck"],
        "viewer": READ,
    })]
