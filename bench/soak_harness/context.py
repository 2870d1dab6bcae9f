"""What every workload action and invariant is given: the tenants, the servers, the record."""

import itertools
import threading
from dataclasses import dataclass, field

import requests

from .record import Record


@dataclass
class Tenant:
    slug: str
    organization_id: int
    api_key: str
    plan: str
    per_minute: int
    # Endpoints that must receive every event they subscribe to: never rotated or removed.
    healthy_endpoints: list = field(default_factory=list)
    churned_endpoints: list = field(default_factory=list)  # public ids, added later
    # Never topped up (no pack, no positive adjustment): its balance runs out (402).
    runs_dry: bool = False


@dataclass
class Context:
    web_urls: list
    receivers: dict  # name -> Receiver
    record: Record
    tenants: list
    stripe_url: str
    staff_user_id: int = 0
    _numbers: itertools.count = field(default_factory=lambda: itertools.count(1))
    _local: threading.local = field(default_factory=threading.local)

    def next_number(self) -> int:
        return next(self._numbers)

    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session


def call(
    ctx: Context,
    tenant: Tenant,
    action: str,
    method: str,
    path: str,
    rng,
    *,
    json=None,
    headers=None,
    submission=False,
    prompt="",
    idempotency_key="",
    timeout=40,
):
    """One API request to a web process picked at random; its outcome recorded.

    Returns the response, or None when no answer came (a killed process, a reset).
    """
    base = rng.choice(ctx.web_urls)
    sent_headers = {"Authorization": f"Bearer {tenant.api_key}", **(headers or {})}
    if idempotency_key:
        sent_headers["Idempotency-Key"] = idempotency_key
    try:
        response = ctx.session().request(
            method, f"{base}{path}", json=json, headers=sent_headers, timeout=timeout
        )
    except requests.RequestException as error:
        ctx.record.response(
            action=action,
            organization=tenant.slug,
            method=method,
            path=path,
            status=None,
            prompt=prompt,
            idempotency_key=idempotency_key,
            body=type(error).__name__,
            submission=submission,
        )
        return None
    ctx.record.response(
        action=action,
        organization=tenant.slug,
        method=method,
        path=path,
        status=response.status_code,
        prompt=prompt,
        idempotency_key=idempotency_key,
        replayed=response.headers.get("Idempotent-Replayed") == "true",
        rate_limit_reset=response.headers.get("X-RateLimit-Reset", ""),
        rate_limit_limit=response.headers.get("X-RateLimit-Limit", ""),
        body=response.text[:500] if response.status_code >= 400 else "",
        submission=submission,
    )
    return response
