from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    HttpResponseForbidden,
    HttpResponseGone,
    HttpResponseRedirect,
)
from django.views.decorators.http import require_safe

from generation import image_urls, output_formats


@require_safe
def image(request, token: str, extension: str = "png"):
    """Serve a generated image to whoever holds a valid signed URL (no API key), with the
    content type of the format it was stored in.

    From a bucket, the answer is a redirect to a short-lived presigned URL of the object;
    from local disk, the file itself.
    """
    try:
        grant = image_urls.grant_from(token)
        presigned = image_urls.presigned_url(grant)
    except image_urls.InvalidImageUrl:
        return HttpResponseForbidden(
            "This image link is invalid or has expired.", content_type="text/plain"
        )
    if presigned is None:
        try:
            response = FileResponse(
                default_storage.open(grant.storage_path, "rb"),
                content_type=output_formats.content_type_of(grant.storage_path),
            )
        except FileNotFoundError:
            return _deleted()
        response["Cache-Control"] = "private, max-age=300"
        return response
    # One HEAD request, so a deleted image answers 410 here rather than the bucket's 404.
    if not default_storage.exists(grant.storage_path):
        return _deleted()
    url, lifetime = presigned
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = f"private, max-age={lifetime}"
    return response


def _deleted():
    return HttpResponseGone("This image was deleted.", content_type="text/plain")
