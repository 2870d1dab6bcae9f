"""Absolute, signed, expiring image URLs that need no API key.

The token carries the storage path and the moment the URL stops working: the sooner of
IMAGE_URL_TTL_SECONDS from now and the job's `expires_at`. Serving it reads no database
row, so a CDN in front can cache it until then.
"""

import time

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "generation.image-url"


class InvalidImageUrl(Exception):
    """Tampered, expired or not a URL we issued."""


def signed_url(*, storage_path: str, job_expires_at) -> str:
    expires = min(
        int(time.time()) + settings.IMAGE_URL_TTL_SECONDS, int(job_expires_at.timestamp())
    )
    token = signing.dumps({"p": storage_path, "e": expires}, salt=SALT, compress=True)
    return settings.SITE_URL.rstrip("/") + reverse("generation:image", args=[token])


def storage_path_from(token: str) -> str:
    """The storage path a URL token grants, or raise InvalidImageUrl."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=settings.IMAGE_URL_TTL_SECONDS)
    except signing.BadSignature:
        raise InvalidImageUrl from None
    if payload.get("e", 0) <= time.time():
        raise InvalidImageUrl
    return payload["p"]
