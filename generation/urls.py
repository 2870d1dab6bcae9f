from django.urls import path

from generation import views

app_name = "generation"

urlpatterns = [
    path("images/<str:token>.png", views.image, name="image"),
]
