from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts.api.base import OrganizationApiView
from accounts.api.serializers import AccountSerializer
from accounts.models import ApiKey


class AccountDetailApi(OrganizationApiView):
    required_scope = ApiKey.Scope.READ

    @extend_schema(responses=AccountSerializer, operation_id="account_retrieve")
    def get(self, request):
        reveal = {"reveal_secrets": request.auth.reveals_signing_secrets}
        return Response(AccountSerializer(self.organization, context=reveal).data)
