import pytest
from django.urls import path

from accounts.api.base import OrganizationApiView
from common.errors import InvalidRequest, Refused
from tests.accounts.factories import OrganizationFactory, api_key_for, auth_header

pytestmark = pytest.mark.django_db


class ExplodingApi(OrganizationApiView):
    def get(self, request):
        raise RuntimeError("secret internals: password=hunter2")


class EchoApi(OrganizationApiView):
    def post(self, request):
        from rest_framework.response import Response

        return Response(self.json_object())


class OutOfCredits(Refused):
    code = "insufficient_credits"
    message = "Insufficient credits to complete request"


class RefusingApi(OrganizationApiView):
    refusal: Refused | None = None

    def get(self, request):
        raise self.refusal


urlpatterns = [
    path("v1/test-explode", ExplodingApi.as_view()),
    path("v1/test-echo", EchoApi.as_view()),
    path("v1/test-out-of-credits", RefusingApi.as_view(refusal=OutOfCredits("Balance 1, cost 4."))),
    path(
        "v1/test-invalid",
        RefusingApi.as_view(refusal=InvalidRequest({"model": ["No such model."]})),
    ),
]


def _assert_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert {"code", "message", "details"} <= set(body["error"])
    return body["error"]


@pytest.mark.parametrize("with_key", [True, False])
def test_unknown_route_is_json_404(client, with_key):
    headers = auth_header(api_key_for(OrganizationFactory())) if with_key else {}
    _assert_error(client.get("/v1/no-such-thing", **headers), 404, "not_found")
    _assert_error(client.post("/v2/no/such/thing", **headers), 404, "not_found")


def test_wrong_method_is_json_405(client):
    response = client.delete("/v1/account", **auth_header(api_key_for(OrganizationFactory())))
    _assert_error(response, 405, "method_not_allowed")


@pytest.mark.urls("tests.common.test_error_contract")
def test_malformed_json_is_400_bad_request(client):
    response = client.post(
        "/v1/test-echo",
        data="{not json",
        content_type="application/json",
        **auth_header(api_key_for(OrganizationFactory())),
    )
    _assert_error(response, 400, "bad_request")


@pytest.mark.urls("tests.common.test_error_contract")
def test_json_that_is_not_an_object_is_400_bad_request(client):
    response = client.post(
        "/v1/test-echo",
        data="[1, 2]",
        content_type="application/json",
        **auth_header(api_key_for(OrganizationFactory())),
    )
    _assert_error(response, 400, "bad_request")


@pytest.mark.urls("tests.common.test_error_contract")
def test_exception_in_view_is_500_without_traceback(client):
    client.raise_request_exception = False
    response = client.get("/v1/test-explode", **auth_header(api_key_for(OrganizationFactory())))
    error = _assert_error(response, 500, "internal_error")
    assert "hunter2" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert response["X-Request-Id"] in error["details"]


def test_body_over_the_limit_is_413_before_reading(client, settings):
    settings.API_MAX_BODY_BYTES = 1000
    response = client.post(
        "/v1/account",
        data="x" * 2000,
        content_type="application/json",
        **auth_header(api_key_for(OrganizationFactory())),
    )
    _assert_error(response, 413, "payload_too_large")


def test_html_pages_keep_html_errors(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("debug", [False, True], ids=["production", "debug"])
@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("path", ["/v1", "/v2", "/v1/", "/v2/"])
def test_the_api_prefixes_themselves_are_json_404(client, settings, debug, method, path):
    settings.DEBUG = debug
    client.raise_request_exception = False
    response = getattr(client, method)(path, **auth_header(api_key_for(OrganizationFactory())))
    _assert_error(response, 404, "not_found")


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "path",
    [
        "/v1/account/",
        "/v1/models/",
        "/v1/text-to-image/",
        "/v1/jobs/img_abc123def456/",
        "/v1/jobs/img_abc123def456/cancel/",
        "/v1/webhook-endpoints/",
        "/v2/images/generate/",
        "/v2/jobs/abc/",
    ],
)
def test_a_route_with_a_trailing_slash_answers_the_json_contract(client, settings, method, path):
    settings.DEBUG = True
    client.raise_request_exception = False
    response = getattr(client, method)(path, **auth_header(api_key_for(OrganizationFactory())))
    _assert_error(response, 404, "not_found")


@pytest.mark.urls("tests.common.test_error_contract")
def test_a_refusal_answers_with_the_status_of_its_code(client):
    response = client.get(
        "/v1/test-out-of-credits", **auth_header(api_key_for(OrganizationFactory()))
    )
    error = _assert_error(response, 402, "insufficient_credits")
    assert error["message"] == "Insufficient credits to complete request"
    assert error["details"] == "Balance 1, cost 4."


@pytest.mark.urls("tests.common.test_error_contract")
def test_an_invalid_request_names_its_fields(client):
    response = client.get("/v1/test-invalid", **auth_header(api_key_for(OrganizationFactory())))
    error = _assert_error(response, 400, "invalid_parameters")
    assert error["fields"] == {"model": ["No such model."]}
