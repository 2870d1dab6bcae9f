from dataclasses import dataclass

from rest_framework.authentication import BaseAuthentication

from accounts import errors, services
from accounts.models import ApiKey, Organization
from common.api.errors import Forbidden, Unauthorized


@dataclass
class ApiClient:
    """Who is calling the API: an organization, through one of its keys."""

    organization: Organization
    api_key: ApiKey
    is_authenticated: bool = True

    @property
    def pk(self):
        return self.api_key.pk


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` or `Authorization: Token <key>`.

    `confirm=False` is for a view that confirms a key this process remembers itself, in a
    Redis round trip it makes anyway, before it acts on the key (OrganizationApiView).
    """

    keyword_schemes = ("bearer", "token")

    def __init__(self, *, confirm: bool = True):
        self.confirm = confirm

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() not in self.keyword_schemes or not raw_key.strip():
            raise Unauthorized("Send the key as 'Authorization: Bearer <api key>'.")
        try:
            api_key = services.authenticate_api_key(raw_key, confirm=self.confirm)
        except errors.InvalidApiKey:
            raise Unauthorized("The API key is unknown, revoked or expired.") from None
        except errors.SuspendedOrganization:
            raise Forbidden(
                "This organization is suspended.", message="Organization suspended"
            ) from None
        request._request.organization = api_key.organization
        request.organization = api_key.organization
        return ApiClient(organization=api_key.organization, api_key=api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'
