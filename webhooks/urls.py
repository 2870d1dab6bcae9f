from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="endpoints"),
    path("deliveries/<str:delivery_id>/", views.delivery_detail, name="delivery"),
    path(
        "deliveries/<str:delivery_id>/redeliver/",
        views.delivery_redeliver,
        name="delivery-redeliver",
    ),
    path("<str:endpoint_id>/", views.endpoint_detail, name="endpoint"),
    path(
        "<str:endpoint_id>/rotate-secret/",
        views.endpoint_rotate_secret,
        name="endpoint-rotate-secret",
    ),
    path("<str:endpoint_id>/delete/", views.endpoint_delete, name="endpoint-delete"),
    path("<str:endpoint_id>/enable/", views.endpoint_enable, name="endpoint-enable"),
    path("<str:endpoint_id>/disable/", views.endpoint_disable, name="endpoint-disable"),
    path("<str:endpoint_id>/test/", views.endpoint_send_test, name="endpoint-send-test"),
    path(
        "<str:endpoint_id>/resend-failed/",
        views.endpoint_resend_failed,
        name="endpoint-resend-failed",
    ),
]
