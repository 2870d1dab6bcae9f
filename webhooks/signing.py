"""Standard Webhooks signatures (https://www.standardwebhooks.com/), as API.md states them."""

import base64
import binascii
import hashlib
import hmac
import secrets

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
    signed = f"{message_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(secret_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )
