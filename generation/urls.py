from django.urls import re_path

from generation import views

app_name = "generation"

urlpatterns = [
    # The extension is the stored image's format; the token alone says which file it is.
    re_path(r"^images/(?P<token>[^/]+)\.(?P<extension>png|jpeg|webp)$", views.image, name="image"),
]
