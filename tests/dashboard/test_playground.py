import json
import re

import pytest

from accounts.models import Organization
from billing.models import CreditLedgerEntry
from dashboard.forms import SIZES
from generation import catalog
from generation.models import Job
from generation.pricing import request_cost
from tests.accounts.factories import MembershipFactory, OrganizationFactory
from tests.accounts.pages import logged_in, page_messages
from tests.billing.factories import give_credits
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db

FORM = {
    "prompt": "a lighthouse at dusk",
    "negative_prompt": "fog",
    "model": "imagen-v2",
    "size": "512x512",
    "steps": 20,
    "guidance_scale": 7.5,
    "seed": 42,
    "style": "artistic",
    "num_images": 2,
}


def owner_with(credits: int, **org_fields):
    owner = MembershipFactory(**{f"organization__{k}": v for k, v in org_fields.items()})
    if credits:
        give_credits(owner.organization, credits)
    return owner


def balance(organization) -> int:
    return Organization.objects.get(pk=organization.pk).credit_balance


def test_playground_form_labels_every_parameter(client):
    content = logged_in(client, owner_with(0)).get("/playground/").content.decode()
    for field in FORM:
        assert f'<label for="id_{field}"' in content, field
    assert "curl " in content
    assert "/v1/text-to-image" in content


def test_playground_submits_through_submit_job_and_charges_like_the_api(client):
    owner = owner_with(10)
    response = logged_in(client, owner).post("/playground/", FORM)
    job = Job.objects.get(organization=owner.organization)
    assert response.status_code == 302
    assert response["Location"] == f"/playground/?job={job.public_id}"
    assert (job.prompt, job.negative_prompt, job.model_id) == (
        "a lighthouse at dusk",
        "fog",
        "imagen-v2",
    )
    assert (job.width, job.height, job.steps, job.seed, job.style, job.num_images) == (
        512,
        512,
        20,
        42,
        "artistic",
        2,
    )
    assert job.dialect == Job.Dialect.V1
    assert job.api_key is None
    assert balance(owner.organization) == 10 - job.credits_reserved
    assert CreditLedgerEntry.objects.filter(reference=f"job:{job.pk}").exists()
    assert page_messages(response) == [f"Job {job.public_id} submitted: 2 images for 2 credits."]


def test_playground_job_page_shows_the_job_and_polls_while_it_runs(client):
    owner = owner_with(10)
    logged_in(client, owner).post("/playground/", FORM)
    job = Job.objects.get(organization=owner.organization)
    content = client.get(f"/playground/?job={job.public_id}").content.decode()
    assert job.public_id in content
    assert f'data-poll-url="/playground/jobs/{job.public_id}/"' in content
    assert "&quot;seed&quot;: 42" in content  # the curl asks for this very job again
    fragment = client.get(f"/playground/jobs/{job.public_id}/")
    assert fragment.status_code == 200
    assert "Generating 2 images" in fragment.content.decode()


def test_playground_shows_the_equivalent_curl_of_what_was_sent(client):
    response = logged_in(client, owner_with(0)).post("/playground/", FORM)
    assert "&quot;negative_prompt&quot;: &quot;fog&quot;" in response.content.decode()


def test_playground_without_credits_says_so_and_creates_no_job(client):
    owner = owner_with(0)
    response = logged_in(client, owner).post("/playground/", FORM)
    assert response.status_code == 200
    assert not Job.objects.exists()
    assert any("Insufficient credits" in message for message in page_messages(response))


def test_playground_rejects_what_the_api_rejects(client):
    owner = owner_with(10)
    response = logged_in(client, owner).post("/playground/", {**FORM, "prompt": "", "steps": 500})
    assert response.status_code == 400
    assert not Job.objects.exists()
    assert balance(owner.organization) == 10


def test_playground_counts_in_the_same_rate_limit_as_the_api(client, steady_window):
    owner = owner_with(100, requests_per_minute_override=1)
    logged_in(client, owner)
    assert client.post("/playground/", FORM).status_code == 302
    response = client.post("/playground/", FORM)
    assert Job.objects.count() == 1
    assert any("minute limit of 1 submissions" in m for m in page_messages(response))


def test_another_organizations_job_is_404_in_the_playground(client):
    theirs = JobFactory(organization=OrganizationFactory())
    logged_in(client, owner_with(0))
    assert client.get(f"/playground/?job={theirs.public_id}").status_code == 404
    assert client.get(f"/playground/jobs/{theirs.public_id}/").status_code == 404


def test_playground_result_shows_the_images_and_stops_polling_once_done(client):
    owner = owner_with(0)
    job = JobFactory(organization=owner.organization, status=Job.Status.COMPLETED, num_images=2)
    for image in job.images.all():
        image.storage_path = f"images/{job.pk}/{image.index}.png"
        image.save(update_fields=["storage_path"])
    content = logged_in(client, owner).get(f"/playground/jobs/{job.public_id}/").content.decode()
    assert content.count('<img src="http://testserver/images/') == 2
    assert "data-poll-url" not in content


def test_playground_shows_the_cost_of_its_choices_and_the_balance_after(client):
    owner = owner_with(20)
    logged_in(client, owner)
    client.post("/playground/", {**FORM, "model": "imagen-v3", "size": "1536x1024"})
    content = client.get("/playground/").content.decode()
    # 2 credits per image x 2 images x 2 started megapixels; 20 - 8 left before this run's 8.
    assert '<strong id="cost-credits">8 credits</strong>' in content
    assert '<strong id="balance-after">4 credits</strong>' in content


def test_playground_says_when_the_balance_is_short_for_the_request(client):
    owner = owner_with(1)
    content = logged_in(client, owner).post("/playground/", FORM).content.decode()
    assert '<p id="cost-short" class="message error">Not enough credits' in content


def test_playground_prices_every_choice_with_the_servers_pricing_rule(client):
    response = logged_in(client, owner_with(0)).get("/playground/")
    prices = json.loads(
        re.search(
            r'<script id="playground-prices" type="application/json">(.*?)</script>',
            response.content.decode(),
        ).group(1)
    )
    for model in catalog.enabled_models():
        for size in SIZES:
            width, height = (int(side) for side in size.split("x"))
            assert prices["costs"][model.id][size] == [
                request_cost(model=model, num_images=n, width=width, height=height)
                for n in range(1, 5)
            ]


def test_playground_keeps_its_choices_after_a_run(client):
    owner = owner_with(10)
    logged_in(client, owner).post("/playground/", FORM)
    job = Job.objects.get(organization=owner.organization)
    form = client.get(f"/playground/?job={job.public_id}").context["form"]
    assert {name: form[name].value() for name in FORM} == FORM
