from django.urls import path

from webhooks.api import views

urlpatterns = [
    path("webhook-endpoints", views.WebhookEndpointsApi.as_view(), name="api-webhook-endpoints"),
    path(
        "webhook-endpoints/<str:endpoint_id>",
        views.WebhookEndpointDeleteApi.as_view(),
        name="api-webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/deliveries",
        views.WebhookDeliveryListApi.as_view(),
        name="api-webhook-endpoint-deliveries",
    ),
    path(
        "webhook-endpoints/<str:endpoint_id>/resend-failed",
        views.WebhookResendFailedApi.as_view(),
        name="api-webhook-endpoint-resend-failed",
    ),
    path(
        "webhook-deliveries/<str:delivery_id>/retry",
        views.WebhookDeliveryRetryApi.as_view(),
        name="api-webhook-delivery-retry",
    ),
]
