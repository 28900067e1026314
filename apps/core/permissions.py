from rest_framework import permissions

from apps.core.models import ApiKey


class HasScope(permissions.BasePermission):
    """Authenticated callers only; writes need a write-scoped key (or a session) and, where a view
    names one, the Django model permission `write_permission` of the key's user."""

    message = "This API key is read-only; writes need a key with the 'write' scope."

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        if isinstance(request.auth, ApiKey) and not request.auth.allows_write():
            return False
        needed = getattr(view, "write_permission", None)
        if needed and not request.user.has_perm(needed):
            self.message = f"Your account lacks the '{needed}' permission."
            return False
        return True
