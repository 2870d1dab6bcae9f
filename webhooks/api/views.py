from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.api.base import OrganizationApiView
from accounts.models import ApiKey
from common.api.views import SAFE_METHODS
from webhooks import selectors, services
from webhooks.api.serializers import (
    DeliveryListQuerySerializer,
    DeliveryListSerializer,
    DeliverySerializer,
    EndpointCreateSerializer,
    EndpointListQuerySerializer,
    EndpointListSerializer,
    EndpointSerializer,
    ResendFailedResultSerializer,
    ResendFailedSerializer,
)
from webhooks.models import Delivery, WebhookEndpoint


class WebhookApiView(OrganizationApiView):
    # Every POST here creates an endpoint or sends deliveries again.
    counts_as_webhook_change = True

    @property
    def required_scope(self) -> str:
        # Any reading key sees endpoints and deliveries, as every member does on the pages;
        # changing them, and their secrets, take the webhooks scope.
        api_key = self.request.auth
        if self.request.method in SAFE_METHODS and not (
            api_key and api_key.reveals_signing_secrets
        ):
            return ApiKey.Scope.READ
        return ApiKey.Scope.WEBHOOKS

    def secrets_context(self) -> dict:
        return {"reveal_secrets": self.request.auth.reveals_signing_secrets}

    def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint:
        try:
            return selectors.endpoint(organization=self.organization, endpoint_id=endpoint_id)
        except WebhookEndpoint.DoesNotExist:
            raise Http404 from None

    def get_delivery(self, delivery_id: str) -> Delivery:
        try:
            return selectors.delivery(organization=self.organization, delivery_id=delivery_id)
        except Delivery.DoesNotExist:
            raise Http404 from None


def _parse(serializer_class, data):
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class WebhookEndpointsApi(WebhookApiView):
    """List the organization's endpoints (GET) or add one (POST)."""

    @extend_schema(
        parameters=[EndpointListQuerySerializer],
        responses=EndpointListSerializer,
        operation_id="webhook_endpoints_list",
    )
    def get(self, request):
        query = _parse(EndpointListQuerySerializer, request.query_params)
        page = selectors.endpoint_page(
            organization=self.organization, limit=query["limit"], cursor=query.get("cursor")
        )
        endpoints = EndpointSerializer(page.endpoints, many=True, context=self.secrets_context())
        return Response({"data": endpoints.data, "next_cursor": page.next_cursor})

    @extend_schema(
        request=EndpointCreateSerializer,
        responses={201: EndpointSerializer},
        operation_id="webhook_endpoints_create",
    )
    def post(self, request):
        fields = _parse(EndpointCreateSerializer, self.json_object())
        endpoint = services.create_endpoint(organization=self.organization, **fields)
        return Response(
            EndpointSerializer(endpoint, context=self.secrets_context()).data,
            status=status.HTTP_201_CREATED,
        )


class WebhookEndpointDeleteApi(WebhookApiView):
    @extend_schema(responses={204: None}, operation_id="webhook_endpoints_delete")
    def delete(self, request, endpoint_id: str):
        services.delete_endpoint(endpoint=self.get_endpoint(endpoint_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(WebhookApiView):
    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="1-100, newest first (50)")],
        responses=DeliveryListSerializer,
        operation_id="webhook_endpoint_deliveries_list",
    )
    def get(self, request, endpoint_id: str):
        query = _parse(DeliveryListQuerySerializer, request.query_params)
        deliveries = selectors.endpoint_deliveries(
            organization=self.organization,
            endpoint=self.get_endpoint(endpoint_id),
            limit=query["limit"],
        )
        return Response({"data": DeliverySerializer(deliveries, many=True).data})


class WebhookDeliveryRetryApi(WebhookApiView):
    @extend_schema(
        request=None, responses={202: DeliverySerializer}, operation_id="webhook_deliveries_retry"
    )
    def post(self, request, delivery_id: str):
        delivery = services.retry_delivery(delivery=self.get_delivery(delivery_id))
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookResendFailedApi(WebhookApiView):
    @extend_schema(
        request=ResendFailedSerializer,
        responses={202: ResendFailedResultSerializer},
        operation_id="webhook_endpoints_resend_failed",
    )
    def post(self, request, endpoint_id: str):
        since = _parse(ResendFailedSerializer, self.json_object())["since"]
        resent = services.resend_failed_deliveries(
            endpoint=self.get_endpoint(endpoint_id), since=since
        )
        return Response({"resent": resent}, status=status.HTTP_202_ACCEPTED)
