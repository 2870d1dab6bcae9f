"""Standard Webhooks signatures (https://www.standardwebhooks.com/), as docs/api states them.

The `standardwebhooks` package signs, as receivers' libraries verify. The secret's format is
checked here first, more strictly than the package decodes it (it takes a secret without the
prefix, and skips characters that are not base64), so a malformed secret signs nothing.
"""

import base64
import binascii
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class InvalidSecret(ValueError):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part of the secret after `whsec_`."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret("A webhook secret starts with whsec_.")
    try:
        encoded = secret[len(SECRET_PREFIX) :]
        # Unpadded base64 is accepted, as the standardwebhooks libraries accept it.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSecret("A webhook secret is whsec_ followed by base64.") from exc


def validate_secret(secret: str) -> str:
    """Raise InvalidSecret unless `secret` is `whsec_` + base64 of 24-64 bytes."""
    key = secret_key(secret)
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise InvalidSecret(
            f"A webhook secret is whsec_ followed by base64 of {MIN_SECRET_BYTES}-"
            f"{MAX_SECRET_BYTES} bytes."
        )
    return secret


def signature(*, secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one `v1,<base64 HMAC-SHA256>` per secret, space-separated."""
    signed_at = datetime.fromtimestamp(timestamp, tz=UTC)
    data = body.decode()
    return " ".join(_webhook(secret).sign(message_id, signed_at, data) for secret in secrets)


def _webhook(secret: str) -> Webhook:
    try:
        return Webhook(secret_key(secret))
    except EmptyWebhookSecretError as exc:
        raise InvalidSecret("A webhook secret is not empty.") from exc
