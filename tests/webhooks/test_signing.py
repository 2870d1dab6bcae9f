"""The webhook-signature header, made with the standardwebhooks package: the same bytes as
the hand-written HMAC it replaced produced for the same inputs (the literals below)."""

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks import signing

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OLD_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
BODY = '{"type":"job.completed","data":{"id":"job_é"}}'.encode()


@pytest.mark.parametrize(
    ("secrets", "message_id", "timestamp", "body", "header"),
    [
        (
            [SECRET],
            "evt_2fTz1kq9",
            1768471800,
            BODY,
            "v1,WpeDVJEttogXy56ZkEjncdVNmDw68QFI9OvPf0O4Rho=",
        ),
        (
            [SECRET, OLD_SECRET],
            "msg_1",
            1700000000,
            b"{}",
            "v1,x5lVgj0b/JJJaUYaa1+6I5J/EECcryrPlFN4VrkmI94= "
            "v1,V5A7hCtzs1KTtYSvRi7DZobR0xbcjWhCBMIKhQUk6k0=",
        ),
        (  # unpadded base64
            ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"],
            "msg_1",
            1700000000,
            b"{}",
            "v1,MfBHhXHzlaEZ4BREyZVwVkxfDNpSGBDdFJNkAW1LX8U=",
        ),
    ],
)
def test_the_signature_is_the_one_signed_before(secrets, message_id, timestamp, body, header):
    assert (
        signing.signature(secrets=secrets, message_id=message_id, timestamp=timestamp, body=body)
        == header
    )


def test_a_receiver_verifies_the_signature_with_the_package(monkeypatch):
    timestamp = int(datetime.now(tz=UTC).timestamp())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature(
            secrets=[OLD_SECRET, SECRET], message_id="evt_1", timestamp=timestamp, body=BODY
        ),
    }
    assert Webhook(SECRET).verify(BODY, headers)["data"] == {"id": "job_é"}


@pytest.mark.parametrize(
    "secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not*base64!", "whsec_"]
)
def test_a_malformed_secret_signs_nothing(secret):
    with pytest.raises(signing.InvalidSecret):
        signing.signature(secrets=[secret], message_id="msg_1", timestamp=1700000000, body=b"{}")
