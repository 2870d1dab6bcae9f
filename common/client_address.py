"""The client's address for limits keyed on it (django-ratelimit's `RATELIMIT_IP_META_KEY`)."""

import ipaddress

from django.conf import settings


def client_ip(request) -> str:
    """The address of the client, as the outermost of `TRUSTED_PROXY_COUNT` proxies saw it.

    Each trusted proxy appends the address it was connected from to X-Forwarded-For, so only
    the last `TRUSTED_PROXY_COUNT` entries are facts; anything before them is the client's own
    text. With no trusted proxy, or a header too short to have passed through all of them (a
    request that reached the server directly), the connecting address is all there is.
    """
    remote_addr = request.META["REMOTE_ADDR"]
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted <= 0:
        return remote_addr
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(forwarded) < trusted:
        return remote_addr
    candidate = forwarded[-trusted]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote_addr
