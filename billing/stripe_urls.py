from django.urls import path

from billing import views

urlpatterns = [
    path("webhook/", views.stripe_webhook, name="stripe-webhook"),
]
