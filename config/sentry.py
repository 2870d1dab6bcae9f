"""Error reports to Sentry, with the Django and Celery integrations (settings call it when
SENTRY_DSN is set)."""

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration


def init_sentry(*, dsn: str, environment: str, release: str | None) -> None:
    """Start reporting errors to `dsn`. No personal data: no user, no cookies, no bodies.

    That is sentry-sdk's default; its `send_default_pii=False`, which says the same, is
    deprecated since 2.x's `data_collection` and would only warn.
    """
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
    )
