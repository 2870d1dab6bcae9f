"""Generation's services refuse with common.errors.Refused, never an HTTP exception.

The API answers each with its documented code and status (tests/generation/test_jobs_api.py
and test_credits.py); pages show its message and details.
"""

import pytest

from accounts.models import Organization
from common.errors import Refused
from generation import services
from generation.models import Job
from generation.requests import GenerationRequest
from tests.generation.factories import JobFactory, customer

pytestmark = pytest.mark.django_db


def submit(organization, **fields):
    request = GenerationRequest(**{"dialect": Job.Dialect.V1, "prompt": "a fox", **fields})
    return services.submit_job(organization=organization, api_key=None, request=request)


def refusal(call) -> Refused:
    with pytest.raises(Refused) as raised:
        call()
    return raised.value


def test_an_unknown_model_is_refused_per_field():
    organization, _ = customer(credits=10)
    refused = refusal(lambda: submit(organization, model="nope"))
    assert refused.code == "invalid_parameters"
    assert refused.fields["model"][0].startswith("Unknown model 'nope'. Available models: ")


def test_a_short_balance_is_refused_as_insufficient_credits():
    organization, _ = customer(credits=0)
    refused = refusal(lambda: submit(organization))
    assert (refused.code, refused.message) == (
        "insufficient_credits",
        "Insufficient credits to complete request",
    )
    assert refused.details == "This request requires 1 credits, but you have 0 remaining"


def test_a_refused_prompt_is_refused_as_content_moderated():
    organization, _ = customer(credits=10)
    refused = refusal(lambda: submit(organization, prompt="fuck this city"))
    assert refused.code == "content_moderated"
    assert refused.details == "The prompt was refused as profane. Nothing was charged."


def test_a_suspended_organization_is_refused_as_forbidden():
    organization, _ = customer(credits=10)
    organization.status = Organization.Status.SUSPENDED
    refused = refusal(lambda: submit(organization))
    assert (refused.code, refused.message) == ("forbidden", "Organization suspended")


def test_a_broker_down_is_refused_as_unavailable(queue_down):
    organization, _ = customer(credits=10)
    refused = refusal(lambda: submit(organization))
    assert refused.code == "service_unavailable"
    assert refused.details == "The job queue is unreachable. Nothing was charged; retry shortly."


def test_canceling_a_running_job_is_refused_as_not_cancelable():
    job = JobFactory(status=Job.Status.RUNNING)
    refused = refusal(lambda: services.cancel_job(organization=job.organization, job=job))
    assert refused.code == "job_not_cancelable"
    assert refused.details == "Only a queued job can be canceled; this one is already running."
