"""The base every tenant API view inherits: the organization comes from the key, once."""

from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from common.api.errors import BadRequest, Forbidden


class HasScope(BasePermission):
    def has_permission(self, request, view):
        scope = getattr(view, "required_scope", None)
        if scope is None or request.auth is None:
            return True
        if scope not in request.auth.scopes:
            raise Forbidden(f"This API key lacks the '{scope}' scope.")
        return True


class OrganizationApiView(APIView):
    """An API view that acts for `self.organization`, the key's organization.

    Reads go through selectors that take that organization, so another tenant's ids
    are simply not found.
    """

    required_scope: str | None = None

    def get_permissions(self):
        return [*super().get_permissions(), HasScope()]

    @property
    def organization(self):
        return self.request.organization

    def json_object(self) -> dict:
        """The request body, which must be a JSON object (400 `bad_request` otherwise)."""
        data = self.request.data
        if not isinstance(data, dict):
            raise BadRequest("The request body must be a JSON object.")
        return data
