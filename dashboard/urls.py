from django.urls import path

from dashboard import key_views, views

app_name = "dashboard"

urlpatterns = [
    path("dashboard/", views.overview, name="overview"),
    path("playground/", views.playground, name="playground"),
    path("playground/jobs/<str:public_id>/", views.playground_job, name="playground-job"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<str:public_id>/", views.job_detail, name="job"),
    path("settings/", views.organization_settings, name="settings"),
    path("keys/usage/", key_views.usage, name="usage"),
    path("keys/<int:key_id>/", key_views.api_key_detail, name="api-key"),
]
