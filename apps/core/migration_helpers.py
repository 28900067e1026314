"""Granting an app's model permissions to the SPEC §8 role groups from a migration, in one place.

    operations = [grant_permissions("datasets", {"viewer": ["view_datasetbuild"]})]

Permissions are normally created after all migrations run; the operation creates the app's now so
the groups can hold them, and its reverse takes them away again.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant_permissions(app_label: str, codenames_by_group: dict[str, list[str]]) -> migrations.RunPython:
    def forward(apps, schema_editor):
        app_config = apps.get_app_config(app_label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
        for group, permissions in _pairs(apps, app_label, codenames_by_group):
            group.permissions.add(*permissions)

    def backward(apps, schema_editor):
        for group, permissions in _pairs(apps, app_label, codenames_by_group):
            group.permissions.remove(*permissions)

    return migrations.RunPython(forward, backward)


def _pairs(apps, app_label, codenames_by_group):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in codenames_by_group.items():
        group, _ = Group.objects.get_or_create(name=name)
        yield group, Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
