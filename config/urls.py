from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerSplitView

from accounts import views as account_views
from common import views as common_views

handler400 = "common.views.bad_request"
handler403 = "common.views.permission_denied"
handler404 = "common.views.page_not_found"
handler500 = "common.views.server_error"

api_v1 = [
    path("", include("accounts.api.urls")),
    path("", include("webhooks.api.urls")),
]

urlpatterns = [
    path("healthz", common_views.healthz, name="healthz"),
    path("readyz", common_views.readyz, name="readyz"),
    path("metrics", common_views.metrics_view, name="metrics"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    # The split view serves Swagger UI's start-up script as a file: the CSP has no inline scripts.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="openapi"), name="api-docs"),
    # Ahead of the admin's own log-in route: the same URL, with the site's log-in limits.
    path("admin/login/", account_views.admin_log_in),
    path("admin/billing/usagereport/", include("reporting.urls")),
    path("admin/", admin.site.urls),
    path("v1/", include(api_v1)),
    # generation serves /v1 and /v2 routes and the signed image URLs.
    path("", include("generation.api.urls")),
    # Every other /v1 or /v2 path is a JSON 404, whatever DEBUG says. `/v1` itself too:
    # otherwise APPEND_SLASH would answer it with a redirect (or, for a POST under DEBUG,
    # an HTML error page).
    re_path(r"^v[12](?:/|\Z)", common_views.api_not_found),
    path("billing/", include("billing.urls")),
    path("stripe/", include("billing.stripe_urls")),
    path("webhooks/", include("webhooks.urls")),
    path("", include("generation.urls")),
    path("", include("dashboard.urls")),
    path("", include("accounts.urls")),
]
