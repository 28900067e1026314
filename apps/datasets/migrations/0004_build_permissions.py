"""Who may see dataset build jobs: everyone who sees every dataset version (requesters see their own)."""

from django.db import migrations

from apps.core.migration_helpers import grant_permissions


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_dataset_build")]

    operations = [grant_permissions("datasets", {group: ["view_datasetbuild"]
                                                 for group in ("curator", "trainer", "viewer")})]
