"""One submit service for the API and the pages: rate limits, validation, submission."""

import pytest

from common.errors import Refused
from generation import services
from generation.api.serializers import TextToImageRequestSerializer
from generation.models import Job
from tests.generation.factories import customer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("steady_window")]


def submit(organization, body=None, **options):
    return services.submit(
        organization=organization,
        api_key=None,
        body=TextToImageRequestSerializer(data=body or {"prompt": "a fox"}),
        **options,
    )


def test_submit_refuses_past_the_minute_window():
    organization, _ = customer(credits=10, requests_per_minute_override=1)
    submit(organization)
    with pytest.raises(Refused) as refused:
        submit(organization)
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.details.startswith("The minute limit of 1 submissions is reached; ")
    assert Job.objects.count() == 1


def test_submit_counted_by_its_caller_is_not_counted_again():
    organization, _ = customer(credits=10, requests_per_minute_override=1)
    submit(organization)
    submit(organization, counted=True)
    assert Job.objects.count() == 2


def test_submit_refuses_an_invalid_body_per_field_and_charges_nothing():
    organization, _ = customer(credits=10)
    with pytest.raises(Refused) as refused:
        submit(organization, {"prompt": "a fox", "steps": 500})
    assert refused.value.code == "invalid_parameters"
    assert refused.value.fields == {"steps": ["Must be between 1 and 100."]}
    assert not Job.objects.exists()
    organization.refresh_from_db()
    assert organization.credit_balance == 10


def test_an_invalid_body_uses_a_slot_of_the_window():
    organization, _ = customer(credits=10, requests_per_minute_override=1)
    with pytest.raises(Refused):
        submit(organization, {"prompt": ""})
    with pytest.raises(Refused) as refused:
        submit(organization)
    assert refused.value.code == "rate_limit_exceeded"
