from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from apps.core.models import ApiKey
from apps.core.selectors import api_key_from_token
from apps.core.services import api_key_touch


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer trt_<id>_<secret>`; sets request.auth to the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        key = api_key_from_token(token.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked API key.")
        api_key_touch(key=key)
        return key.user, key

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) to anonymous requests.
        return f'{self.keyword} realm="api"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.core.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "trt_<id>_<secret> API key"}


def author(user):
    """The user a write records as its author (`created_by`, `requested_by`, `actor`): None for an anonymous
    caller and for writes no user made (tasks, commands)."""
    return user if user is not None and user.is_authenticated else None


def actor_label(request) -> str:
    """Who did it, for audit rows: the username, and which API key when one was used."""
    if isinstance(request.auth, ApiKey):
        return f"{request.user.get_username()} via key {request.auth.name}"
    return request.user.get_username()
