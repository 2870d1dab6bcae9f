from django.urls import path

from generation.api import estimates, views

urlpatterns = [
    path("v1/models", views.ModelListApi.as_view(), name="api-models"),
    path("v1/estimate", estimates.EstimateApi.as_view(), name="api-estimate"),
    path("v1/usage", views.UsageApi.as_view(), name="api-usage"),
    path("v1/text-to-image", views.TextToImageApi.as_view(), name="api-text-to-image"),
    path("v1/image-to-image", views.ImageToImageApi.as_view(), name="api-image-to-image"),
    path("v1/variations", views.VariationsApi.as_view(), name="api-variations"),
    path("v1/jobs", views.JobListApi.as_view(), name="api-jobs"),
    path("v1/jobs/<str:job_ref>", views.JobDetailApi.as_view(), name="api-job"),
    path("v1/jobs/<str:job_ref>/cancel", views.JobCancelApi.as_view(), name="api-job-cancel"),
    path(
        "v1/images/generations",
        views.OpenAIImageGenerationApi.as_view(),
        name="api-openai-generations",
    ),
    path("v1/images/edits", views.OpenAIImageEditApi.as_view(), name="api-openai-edits"),
    path(
        "v1/images/variations",
        views.OpenAIImageVariationApi.as_view(),
        name="api-openai-variations",
    ),
    path("v1/tasks/sync", views.TaskSyncApi.as_view(), name="api-tasks-sync"),
    path("v1/tasks/async", views.TaskAsyncApi.as_view(), name="api-tasks-async"),
    path("v2/images/generate", views.V2GenerateApi.as_view(), name="api-v2-generate"),
    path("v2/jobs/<str:job_ref>", views.V2JobDetailApi.as_view(), name="api-v2-job"),
]
