"""POST /v1/estimate: the cost of any submission endpoint's body, without submitting it."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.response import Response

from accounts.api.base import OrganizationApiView
from accounts.models import ApiKey
from common.api.errors import InvalidParameters
from common.api.views import json_object
from generation import services
from generation.api import serializers
from generation.api.views import JOB_ERRORS

DEFAULT_ENDPOINT = "/v1/text-to-image"
# Each job-creating endpoint, by its path, and the body it takes.
BODIES = {
    "/v1/text-to-image": serializers.TextToImageRequestSerializer,
    "/v1/image-to-image": serializers.ImageToImageRequestSerializer,
    "/v1/variations": serializers.VariationsRequestSerializer,
    "/v2/images/generate": serializers.V2GenerateRequestSerializer,
    "/v1/images/generations": serializers.OpenAIImageRequestSerializer,
    "/v1/images/edits": serializers.OpenAIImageEditRequestSerializer,
    "/v1/images/variations": serializers.OpenAIImageVariationRequestSerializer,
    "/v1/tasks/sync": serializers.TaskRequestSerializer,
    "/v1/tasks/async": serializers.TaskRequestSerializer,
}


class EstimateSerializer(drf_serializers.Serializer):
    credits = drf_serializers.IntegerField()
    balance = drf_serializers.IntegerField()


class EstimateApi(OrganizationApiView):
    required_scope = ApiKey.Scope.READ
    counts_as_read = True
    idempotent_posts = False  # nothing is created, so there is nothing to replay

    @extend_schema(
        operation_id="estimate",
        request=serializers.TextToImageRequestSerializer,
        responses={200: EstimateSerializer, **JOB_ERRORS},
        parameters=[
            OpenApiParameter(
                "endpoint",
                str,
                OpenApiParameter.QUERY,
                description=f"The endpoint whose body this is: {', '.join(BODIES)}. "
                f"Default {DEFAULT_ENDPOINT}.",
            )
        ],
    )
    def post(self, request):
        endpoint = request.query_params.get("endpoint", DEFAULT_ENDPOINT)
        if endpoint not in BODIES:
            raise InvalidParameters({"endpoint": [f"Must be one of: {', '.join(BODIES)}."]})
        body = BODIES[endpoint](data=json_object(request))
        result = services.estimate(organization=self.organization, body=body)
        return Response(EstimateSerializer(result).data)
