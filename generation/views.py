from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseForbidden, HttpResponseGone
from django.views.decorators.http import require_safe

from generation.image_urls import InvalidImageUrl, storage_path_from


@require_safe
def image(request, token: str):
    """Serve a generated PNG to whoever holds a valid signed URL (no API key)."""
    try:
        path = storage_path_from(token)
    except InvalidImageUrl:
        return HttpResponseForbidden(
            "This image link is invalid or has expired.", content_type="text/plain"
        )
    try:
        file = default_storage.open(path, "rb")
    except FileNotFoundError:
        return HttpResponseGone("This image was deleted.", content_type="text/plain")
    response = FileResponse(file, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response
