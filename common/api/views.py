"""What any API view may use, whoever authenticates it: the request body as a JSON object,
the safe methods, and the API key scope a view requires."""

from rest_framework.permissions import BasePermission

from common.api.errors import BadRequest, Forbidden

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def json_object(request) -> dict:
    """The body of a request that needs one: a JSON object (or a form), else 400 `bad_request`."""
    # DRF parses no body (no Content-Length) as {}, which would read as "every field missing".
    if request.stream is None:
        raise BadRequest("The request body is empty; send a JSON object.")
    data = request.data
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    return data


class HasScope(BasePermission):
    def has_permission(self, request, view):
        scope = getattr(view, "required_scope", None)
        if scope is None or request.auth is None:
            return True
        if scope not in request.auth.scopes:
            raise Forbidden(f"This API key lacks the '{scope}' scope.")
        return True
