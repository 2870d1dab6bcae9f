"""Absolute, signed, expiring image URLs that need no API key.

The token carries the storage path and the moment the URL stops working: the sooner of
IMAGE_URL_TTL_SECONDS from now and the job's `expires_at`. Serving it reads no database
row, so a CDN in front can cache it until then.

With local disk, the URL's route streams the file. With a bucket, it redirects to a
presigned URL of the object, short-lived and never outliving the token, so image bytes
never pass through a web process and any web host serves what any worker wrote.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.files.storage import storages
from django.urls import reverse
from storages.backends.s3 import S3Storage

SALT = "generation.image-url"
# Quarantined images are stored under this prefix (generation.moderation_cases) and move
# out of it when staff release them: nothing under it is ever served from a URL.
QUARANTINE_PREFIX = "quarantine/"
# A URL ends in its image's format (generation/urls.py); the token alone names the file.
URL_EXTENSIONS = ("png", "jpeg", "webp")


class InvalidImageUrl(Exception):
    """Tampered, expired or not a URL we issued."""


@dataclass(frozen=True)
class ImageGrant:
    """What a valid URL grants: one stored file, until `expires` (Unix seconds)."""

    storage_path: str
    expires: int


def signed_url(*, storage_path: str, job_expires_at) -> str:
    expires = min(
        int(time.time()) + settings.IMAGE_URL_TTL_SECONDS, int(job_expires_at.timestamp())
    )
    token = signing.dumps({"p": storage_path, "e": expires}, salt=SALT, compress=True)
    extension = storage_path.rpartition(".")[2]
    if extension not in URL_EXTENSIONS:
        extension = "png"
    path = reverse("generation:image", kwargs={"token": token, "extension": extension})
    return settings.SITE_URL.rstrip("/") + path


def grant_from(token: str) -> ImageGrant:
    """The file a URL token grants, or raise InvalidImageUrl."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.IMAGE_URL_TTL_SECONDS)
    except signing.BadSignature:
        raise InvalidImageUrl from None
    if payload.get("e", 0) <= time.time() or payload["p"].startswith(QUARANTINE_PREFIX):
        raise InvalidImageUrl
    return ImageGrant(storage_path=payload["p"], expires=payload["e"])


def presigned_url(grant: ImageGrant) -> tuple[str, int] | None:
    """A presigned URL of the granted object and its lifetime in seconds; None on local disk.

    The lifetime is IMAGE_PRESIGNED_URL_SECONDS, cut to what is left of the grant.
    """
    storage = storages["default"]
    if not isinstance(storage, S3Storage):
        return None
    lifetime = min(settings.IMAGE_PRESIGNED_URL_SECONDS, grant.expires - int(time.time()))
    if lifetime <= 0:
        raise InvalidImageUrl
    return storage.url(grant.storage_path, expire=lifetime), lifetime
