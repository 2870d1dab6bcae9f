"""Idempotency-Key on creating POSTs (docs/api/README.md), recorded in the shared cache.

A key is claimed atomically (`cache.add`) with the request's fingerprint before the view
runs, so a concurrent duplicate sees it in flight (409). A successful (2xx) answer is kept
for 24 hours and replayed unchanged for the same body, refused (422) for another. So is any
answer given after the request created something (`keep_answer`), an error included: a
retry then replays it instead of creating and charging a second time. A request refused
before creating anything (4xx/5xx) has its key released: the client can fix the request
and send it again under the same key.
"""

import hashlib
import logging
from dataclasses import dataclass

from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.response import Response

from common.api.errors import IdempotencyConflict, IdempotencyKeyReused, InvalidParameters

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
REPLAY_SECONDS = 24 * 60 * 60
# How long a claim survives a process that died mid-request (longer than any sync wait).
IN_FLIGHT_SECONDS = 180

logger = logging.getLogger(__name__)

IN_FLIGHT = "in_flight"
DONE = "done"


class Replay(Exception):
    """Raised to answer with the stored response instead of running the view."""

    def __init__(self, response: Response):
        super().__init__("idempotent replay")
        self.response = response


@dataclass
class Claim:
    cache_key: str
    fingerprint: str
    # Whether the request has created something, which makes its answer final.
    created: bool = False


def _fingerprint(request) -> str:
    django_request = request._request
    body = django_request.body
    content_type = django_request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/"):
        # The boundary is random per send: the same form re-sent must match itself.
        boundary = content_type.partition("boundary=")[2].strip('"')
        if boundary:
            body = body.replace(boundary.encode(), b"")
    digest = hashlib.sha256()
    digest.update(f"{django_request.method} {django_request.path}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def claim(request, organization) -> Claim | None:
    """Claim the request's Idempotency-Key, or raise Replay / 409 / 422 / 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidParameters({HEADER: [f"Must be 1-{MAX_KEY_LENGTH} characters."]})
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    cache_key = f"idempotency:{organization.pk}:{key_hash}"
    fingerprint = _fingerprint(request)
    if cache.add(
        cache_key, {"state": IN_FLIGHT, "fingerprint": fingerprint}, timeout=IN_FLIGHT_SECONDS
    ):
        return Claim(cache_key=cache_key, fingerprint=fingerprint)
    record = cache.get(cache_key)
    if record is None:  # expired between the two calls: try once more
        return claim(request, organization)
    if record["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body or endpoint."
        )
    if record["state"] == IN_FLIGHT:
        raise IdempotencyConflict(
            "The first request with this Idempotency-Key is still running; retry later."
        )
    response = Response(record["data"], status=record["status"])
    response["Idempotent-Replayed"] = "true"
    raise Replay(response)


def keep_answer(request) -> None:
    """Mark the request as having created something: its answer, whatever it is, is kept."""
    claim = getattr(request, "idempotency_claim", None)
    if claim is not None:
        claim.created = True


def settle(claim: Claim, response) -> None:
    """Keep a successful or final answer for replays; release the key after a refusal."""
    if not (claim.created or 200 <= response.status_code < 300):
        try:
            cache.delete(claim.cache_key)
        except RedisError:
            # Redis went away mid-request (the refusal is often its 503): the refusal still
            # reaches the client, and the key stays in flight (409) until the claim expires.
            logger.warning("Could not release an idempotency key", exc_info=True)
        return
    record = {
        "state": DONE,
        "fingerprint": claim.fingerprint,
        "status": response.status_code,
        "data": response.data,
    }
    try:
        cache.set(claim.cache_key, record, timeout=REPLAY_SECONDS)
    except RedisError:
        # The answer still reaches the client; its key stays in flight (409) until the
        # claim expires, rather than the job's answer turning into an error.
        logger.warning("Could not keep the answer for an idempotency key", exc_info=True)
