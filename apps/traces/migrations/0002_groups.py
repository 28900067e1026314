"""Create the roles of SPEC §8 as Django groups with model permissions.

Later apps add their own permissions to these groups in their own migrations.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP_PERMISSIONS = {
    # Captures traces (scripts, annotators); sees only what it created.
    "contributor": ["add_trace", "view_trace", "add_tracescore", "view_tracescore"],
    "curator": ["add_trace", "view_trace", "change_trace", "view_all_traces", "review_trace",
                "add_tracescore", "view_tracescore", "view_curationevent"],
    "trainer": ["view_trace", "view_all_traces", "add_tracescore", "view_tracescore", "view_curationevent"],
    "viewer": ["view_trace", "view_all_traces", "view_tracescore", "view_curationevent"],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so groups can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(content_type__app_label="traces", codename__in=codenames)
        group.permissions.add(*perms)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("traces", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
