"""API keys on /api/*: `Authorization: Bearer <key>` (see jobs.apikeys)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from jobs.apikeys import apikey_check, keys_required


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """request.auth is the ApiKey; a wrong key is refused even if keys are optional."""

    def authenticate(self, request):
        scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        api_key = apikey_check(key.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is wrong or revoked.")
        return (None, api_key)

    def authenticate_header(self, request):
        return 'Bearer realm="queue-services"'


class ApiKeyWhenRequired(permissions.BasePermission):
    message = "An API key is required: send Authorization: Bearer <key>."

    def has_permission(self, request, view):
        if request.auth is not None or not keys_required():
            return True
        # Without credentials DRF answers 401 (not 403) when this is refused.
        return False


def check_workspace(request, workspace_id) -> None:
    """403 when the request's key is limited to another workspace."""
    api_key = request.auth
    if (
        api_key is not None
        and api_key.workspace_id
        and str(workspace_id) != api_key.workspace_id
    ):
        raise exceptions.PermissionDenied(
            "This API key may not act for that workspace."
        )


class ApiKeySchema(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
