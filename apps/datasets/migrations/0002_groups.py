"""Give the SPEC §8 roles their dataset permissions (the groups come from traces 0002_groups).

Curators and trainers build versions; viewers only read them. Contributors get nothing here: they
see only their own traces, and a version may hold anyone's.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_PERMISSIONS = {
    "curator": ["add_datasetversion", "view_datasetversion", "view_datasetitem"],
    "trainer": ["add_datasetversion", "view_datasetversion", "view_datasetitem"],
    "viewer": ["view_datasetversion", "view_datasetitem"],
}


def add_permissions(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so groups can hold them.
    app_config = apps.get_app_config("datasets")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(content_type__app_label="datasets", codename__in=codenames))


def remove_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    perms = Permission.objects.filter(content_type__app_label="datasets")
    for group in Group.objects.filter(name__in=GROUP_PERMISSIONS):
        group.permissions.remove(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0001_initial"),
        ("traces", "0002_groups"),
    ]

    operations = [migrations.RunPython(add_permissions, remove_permissions)]
