""""May see everything, or only their own": the one visibility rule every app's selectors use.

A user holding the app's view-all permission (curators, trainers, viewers, superusers) sees every
row; anyone else sees the rows they created. `visibility_scope` names the set a user sees, and
cached reads are keyed by it, so two users share a cached page only when they see the same rows.
"""

from django.db.models import QuerySet


def visible_to(user, queryset: QuerySet, *, view_all_permission: str, owner_field: str = "created_by") -> QuerySet:
    if user.has_perm(view_all_permission):
        return queryset
    if not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{owner_field: user})


def visibility_scope(user, *, view_all_permission: str) -> str:
    return "all" if user.has_perm(view_all_permission) else f"user:{user.pk}"
