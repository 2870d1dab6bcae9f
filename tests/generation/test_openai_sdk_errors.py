"""The official openai SDK raises its usual exceptions on our errors."""

import openai
import pytest

from tests.accounts.factories import OrganizationFactory, api_key_for
from tests.generation.factories import customer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sdk(live_server):
    """Build SDK clients for the live server; their keep-alive connections close after the test."""
    clients = []

    def build(key):
        clients.append(openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key, max_retries=0))
        return clients[-1]

    yield build
    for client in clients:
        client.close()


def test_bad_key_raises_authentication_error(sdk):
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk("sk_live_nope").images.generate(model="imagen-v2", prompt="p")
    assert raised.value.status_code == 401
    assert raised.value.body["code"] == "unauthorized"


def test_short_balance_raises_a_402_status_error_with_the_sentence(sdk):
    key = api_key_for(OrganizationFactory())
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(key).images.generate(model="imagen-v2", prompt="p", n=2)
    assert raised.value.status_code == 402
    assert raised.value.body["code"] == "insufficient_credits"
    assert (
        raised.value.body["details"] == "This request requires 2 credits, but you have 0 remaining"
    )


def test_a_passed_budget_raises_a_402_status_error_naming_the_budget(sdk):
    _, key = customer(credits=10, monthly_credit_budget=1)
    with pytest.raises(openai.APIStatusError) as raised:
        sdk(key).images.generate(model="imagen-v2", prompt="p", n=2)
    assert raised.value.status_code == 402
    assert raised.value.body["code"] == "budget_exceeded"
    assert raised.value.body["details"] == (
        "This request requires 2 credits, but the organization's monthly budget of 1 credits "
        "has 1 left this month"
    )


def test_invalid_size_raises_bad_request_error(sdk):
    _, key = customer(credits=10)
    with pytest.raises(openai.BadRequestError) as raised:
        sdk(key).images.generate(model="imagen-v2", prompt="p", size="100x100")
    assert "size" in raised.value.body["fields"]
