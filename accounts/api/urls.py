from django.urls import path

from accounts.api.views import AccountDetailApi

urlpatterns = [
    path("account", AccountDetailApi.as_view(), name="api-account"),
]
