"""Hostile bodies and prompts: refused cleanly or stored faithfully, never a 500."""

import io
import json

import pytest
from django.conf import settings

from generation.models import Job
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db


class EndlessBody(io.RawIOBase):
    """A request body that never ends, counting what the server reads of it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size=-1):
        size = 64 * 1024 if size is None or size < 0 else min(size, 64 * 1024)
        self.read_bytes += size
        return b" " * size


def _submit(client, key, prompt, **extra):
    return client.post(
        "/v1/text-to-image",
        {"prompt": prompt, "width": 512, "height": 512},
        content_type="application/json",
        **headers(key, **ASYNC),
        **extra,
    )


def test_a_body_declared_over_15_mb_is_refused_with_413_unread(client):
    _, key = customer(credits=10)
    body = EndlessBody()
    response = client.generic(
        "POST",
        "/v1/text-to-image",
        b"",
        content_type="application/json",
        CONTENT_LENGTH=str(settings.API_MAX_BODY_BYTES + 1),
        **{"wsgi.input": body},
        **headers(key),
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert body.read_bytes == 0


def test_an_endless_chunked_body_is_cut_off_at_the_limit_with_413(client):
    _, key = customer(credits=10)
    body = EndlessBody()
    response = client.generic(
        "POST",
        "/v1/text-to-image",
        b"",
        content_type="application/json",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": body},
        **headers(key),
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert body.read_bytes <= settings.API_MAX_BODY_BYTES + 64 * 1024


def test_a_small_chunked_body_is_read_and_served(client):
    organization, key = customer(credits=10)
    payload = json.dumps({"prompt": "a fox", "width": 512, "height": 512}).encode()
    response = client.generic(
        "POST",
        "/v1/text-to-image",
        b"",
        content_type="application/json",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(payload)},
        **headers(key, **ASYNC),
    )
    assert response.status_code == 202, response.content
    assert Job.objects.get(organization=organization).prompt == "a fox"


@pytest.mark.parametrize(
    "prompt",
    [
        "a fox 🦊 under a 🌕, 👩🏽‍🚀 waving",
        "قطة على سطح القمر",  # right-to-left Arabic
        "שועל \u202eבשלג\u202c",  # Hebrew with an explicit right-to-left override
        "tabs\tand\nnewlines\r\nkept",
        "zero\u200bwidth and combining e\u0301",
    ],
)
def test_unusual_but_valid_prompts_are_stored_exactly(client, prompt):
    organization, key = customer(credits=10)
    response = _submit(client, key, prompt)
    assert response.status_code == 202, response.content
    assert Job.objects.get(organization=organization).prompt == prompt


@pytest.mark.parametrize(
    "prompt",
    [
        "a fox\x00",  # PostgreSQL text cannot hold NUL
        "\ud83e",  # a lone surrogate: not encodable as UTF-8
    ],
)
def test_prompts_a_database_cannot_store_are_400_invalid_parameters(client, prompt):
    organization, key = customer(credits=10)
    response = _submit(client, key, prompt)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_parameters"
    assert "prompt" in error["fields"]
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.exists()


def test_a_nul_in_the_raw_json_text_is_refused_not_stored(client):
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        b'{"prompt": "a fox\\u0000", "width": 512, "height": 512}',
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 400
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "field", ["negative_prompt", "model", "style", "webhook_url", "webhook_secret"]
)
def test_a_nul_in_any_text_field_is_400_never_500(client, field):
    _, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", field: "x\x00y"},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_parameters"


@pytest.mark.parametrize(
    "header", ["HTTP_IDEMPOTENCY_KEY", "HTTP_X_REQUEST_ID", "HTTP_USER_AGENT", "HTTP_ACCEPT"]
)
def test_control_characters_in_headers_do_not_break_the_api(client, header):
    _, key = customer(credits=10)
    response = _submit(client, key, "a fox", **{header: "evil\x00\x01\x7f"})
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()["error"]) >= {"code", "message", "details"}


INJECTED_OR_PRIVATE_URLS = [
    "http://hooks.example.com/\r\nX-Injected: 1",
    "http://hooks.example.com/ok\nHost: evil.example.com",
    "http://hooks.example.com/%0d%0aX-Injected:%201\r\n",
    "http://hooks.example.com\x00.evil.example.com/",
    "http://hooks.example.com\\@evil.example.com/",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http:///no-host",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/",
    "http://[fec0::1]/",  # IPv6 site-local
    "http://2130706433/",  # 127.0.0.1 as one decimal number
    "http://0x7f.0.0.1/",
    "http://10.0.0.8/hook",
    "http://localhost/hook",
]


@pytest.mark.parametrize("url", INJECTED_OR_PRIVATE_URLS)
def test_webhook_endpoints_with_injected_or_private_urls_are_refused(client, url):
    from webhooks.models import WebhookEndpoint

    _, key = customer(credits=0)
    response = client.post(
        "/v1/webhook-endpoints",
        {"url": url, "events": ["job.completed"]},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 400, (url, response.status_code, response.content)
    assert response.json()["error"]["code"] == "invalid_parameters"
    assert "url" in response.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", INJECTED_OR_PRIVATE_URLS)
def test_job_webhook_urls_with_injected_or_private_urls_are_refused(client, url):
    organization, key = customer(credits=10)
    response = client.post(
        "/v1/text-to-image",
        {"prompt": "a fox", "webhook_url": url},
        content_type="application/json",
        **headers(key),
    )
    assert response.status_code == 400, (url, response.status_code)
    assert "webhook_url" in response.json()["error"]["fields"]
    organization.refresh_from_db()
    assert organization.credit_balance == 10


JSON_ENDPOINTS = [
    "/v1/text-to-image",
    "/v1/image-to-image",
    "/v1/variations",
    "/v1/images/generations",
    "/v1/tasks/sync",
    "/v1/tasks/async",
    "/v2/images/generate",
    "/v1/webhook-endpoints",
]


def _assert_refused(response, code: str) -> dict:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    return error


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_json_nested_10000_deep_is_400_bad_request(client, path):
    organization, key = customer(credits=10)
    deep = '{"prompt": "a fox", "extra": ' + "[" * 10_000 + "]" * 10_000 + "}"
    response = client.post(path, deep, content_type="application/json", **headers(key, **ASYNC))
    _assert_refused(response, "bad_request")
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.exists()


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
def test_an_empty_json_body_is_400_bad_request(client, path):
    _, key = customer(credits=10)
    response = client.post(path, b"", content_type="application/json", **headers(key, **ASYNC))
    error = _assert_refused(response, "bad_request")
    assert "empty" in error["details"]


def test_a_job_cursor_nested_10000_deep_is_400_naming_cursor(client):
    import base64

    _, key = customer(credits=0)
    cursor = base64.urlsafe_b64encode(b"[" * 10_000).decode()
    response = client.get("/v1/jobs", {"cursor": cursor}, **headers(key))
    error = _assert_refused(response, "invalid_parameters")
    assert "cursor" in error["fields"]


@pytest.mark.parametrize("size", ["1" * 5_000, "1024x" + "9" * 5_000, "¹⁰²⁴x1024"])
def test_an_openai_size_with_huge_or_odd_numbers_is_400_naming_size(client, size):
    organization, key = customer(credits=10)
    response = client.post(
        "/v1/images/generations",
        {"prompt": "a fox", "size": size},
        content_type="application/json",
        **headers(key, **ASYNC),
    )
    error = _assert_refused(response, "invalid_parameters")
    assert "size" in error["fields"]
    organization.refresh_from_db()
    assert organization.credit_balance == 10


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": "0001-01-01"}, "to"),
        ({"from": "0001-01-01", "to": "1970-01-02"}, "from"),
        ({"from": "9999-12-31"}, "from"),
    ],
)
def test_usage_dates_at_the_ends_of_the_calendar_are_400_naming_the_date(client, query, field):
    _, key = customer(credits=0)
    response = client.get("/v1/usage", query, **headers(key))
    error = _assert_refused(response, "invalid_parameters")
    assert list(error["fields"]) == [field]


def _multipart_image_request(fields: int = 0, files: int = 0) -> dict:
    from tests.generation.factories import image_bytes

    data = {"prompt": "as a watercolour", "image": io.BytesIO(image_bytes("PNG"))}
    data.update({f"field{i}": "x" for i in range(fields)})
    for i in range(files):
        upload = io.BytesIO(b"x")
        upload.name = f"file{i}.txt"
        data[f"file{i}"] = upload
    return data


@pytest.mark.parametrize(
    ("shape", "what"), [({"fields": 1_500}, "fields"), ({"files": 150}, "files")]
)
def test_multipart_with_too_many_parts_is_400_bad_request(client, shape, what):
    organization, key = customer(credits=10)
    response = client.post(
        "/v1/image-to-image", _multipart_image_request(**shape), **headers(key, **ASYNC)
    )
    error = _assert_refused(response, "bad_request")
    assert what in error["details"]
    organization.refresh_from_db()
    assert organization.credit_balance == 10
    assert not Job.objects.exists()
