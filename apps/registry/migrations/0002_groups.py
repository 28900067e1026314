"""Trainers create models, promote runs and move aliases (champion behind its check); viewers read."""

from django.db import migrations

from apps.core.migration_helpers import grant_permissions

READ = ["view_registeredmodel", "view_modelversion", "view_modelversionfile", "view_modelalias", "view_aliasevent"]


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial"), ("traces", "0002_groups")]

    operations = [grant_permissions("registry", {"trainer": [*READ, "add_registeredmodel", "add_modelversion"],
                                                 "viewer": READ})]
