"""Staff edit the prompt blocklist in the admin; an edit takes effect on the next submission."""

import pytest
from django.urls import reverse

from generation.models import BlockedTerm
from tests.generation.factories import ASYNC, customer, headers

pytestmark = pytest.mark.django_db


def submit(client, key, prompt):
    return client.post(
        "/v1/text-to-image",
        {"prompt": prompt},
        content_type="application/json",
        **headers(key, **ASYNC),
    )


def test_term_added_in_the_admin_is_refused_at_once(staff_client, staff, client):
    _, key = customer(credits=10)
    assert submit(client, key, "a zorblax in the snow").status_code == 202
    response = staff_client.post(
        reverse("admin:generation_blockedterm_add"), {"term": "zorblax", "note": "test slur"}
    )
    assert response.status_code == 302
    assert BlockedTerm.objects.get().created_by == staff
    response = submit(client, key, "a Z0RBLAX in the snow")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "content_moderated")


def test_term_deleted_in_the_admin_is_accepted_again(staff_client, client):
    term = BlockedTerm.objects.create(term="zorblax")
    _, key = customer(credits=10)
    assert submit(client, key, "a zorblax").status_code == 400
    staff_client.post(
        reverse("admin:generation_blockedterm_delete", args=[term.pk]), {"post": "yes"}
    )
    assert submit(client, key, "a zorblax").status_code == 202
