"""Production: secrets from the environment, HTTPS everywhere, strict headers.

A process started with a required variable unset, empty or left at its public development
value refuses to start, naming the variable (ImproperlyConfigured).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import _DEVELOPMENT_SECRETS, env


def _secret(name: str) -> str:
    value = env(name)
    if not value or value == _DEVELOPMENT_SECRETS[name]:
        raise ImproperlyConfigured(
            f"Set the {name} environment variable to a secret of your own: "
            "it is empty or the public development value."
        )
    return value


DEBUG = False
SECRET_KEY = _secret("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
STRIPE_SECRET_KEY = _secret("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = _secret("STRIPE_WEBHOOK_SECRET")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes and the Prometheus scraper call the processes directly, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
