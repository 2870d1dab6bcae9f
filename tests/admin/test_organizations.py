"""Organizations and keys in the admin: suspension, revocation and credit adjustments."""

import pytest
from django.urls import reverse

from billing.models import CreditLedgerEntry
from billing.selectors import ledger_mismatches
from tests.generation.factories import customer, headers

pytestmark = pytest.mark.django_db


def adjust_url(organization) -> str:
    return reverse("admin:accounts_organization_adjust_credits", args=[organization.pk])


def adjustment_form(staff_client, organization) -> dict:
    token = staff_client.get(adjust_url(organization)).context["form"].initial["token"]
    return {"token": str(token)}


def test_adjustment_appends_one_entry_with_the_staff_user_and_reason(staff_client, staff):
    organization, _ = customer(credits=10)
    form = adjustment_form(staff_client, organization) | {"amount": "25", "reason": "Goodwill"}
    response = staff_client.post(adjust_url(organization), form)
    assert response.status_code == 302
    entries = CreditLedgerEntry.objects.filter(organization=organization, kind="adjustment")
    assert [(e.amount, e.actor, e.memo) for e in entries] == [(25, staff, "Goodwill")]
    organization.refresh_from_db()
    assert organization.credit_balance == 35
    assert ledger_mismatches() == []


def test_submitting_the_same_adjustment_twice_appends_it_once(staff_client):
    organization, _ = customer(credits=10)
    form = adjustment_form(staff_client, organization) | {"amount": "-4", "reason": "Dup job"}
    staff_client.post(adjust_url(organization), form)
    staff_client.post(adjust_url(organization), form)
    assert CreditLedgerEntry.objects.filter(kind="adjustment").count() == 1
    organization.refresh_from_db()
    assert organization.credit_balance == 6
    assert ledger_mismatches() == []


def test_adjustment_below_zero_is_refused(staff_client):
    organization, _ = customer(credits=10)
    form = adjustment_form(staff_client, organization) | {"amount": "-11", "reason": "Too much"}
    response = staff_client.post(adjust_url(organization), form)
    assert response.status_code == 200
    assert response.context["form"].errors["amount"]
    assert not CreditLedgerEntry.objects.filter(kind="adjustment").exists()


def test_adjustment_needs_a_reason(staff_client):
    organization, _ = customer(credits=10)
    form = adjustment_form(staff_client, organization) | {"amount": "5", "reason": ""}
    assert staff_client.post(adjust_url(organization), form).status_code == 200
    assert not CreditLedgerEntry.objects.filter(kind="adjustment").exists()


def test_adjustment_form_is_refused_to_a_customer(client):
    from tests.accounts.factories import UserFactory

    organization, _ = customer(credits=10)
    client.force_login(UserFactory())
    response = client.post(adjust_url(organization), {"amount": "5", "reason": "x"})
    assert response.status_code == 302
    assert not CreditLedgerEntry.objects.filter(kind="adjustment").exists()


def test_suspend_and_unsuspend_actions_switch_the_keys(staff_client, client):
    organization, key = customer(credits=10)
    changelist = reverse("admin:accounts_organization_changelist")
    selected = {"_selected_action": [organization.pk]}
    staff_client.post(changelist, {"action": "suspend", **selected})
    response = client.get("/v1/models", **headers(key))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    staff_client.post(changelist, {"action": "unsuspend", **selected})
    assert client.get("/v1/models", **headers(key)).status_code == 200


def test_revoke_action_turns_the_key_away(staff_client, client):
    organization, key = customer(credits=10)
    api_key = organization.api_keys.get()
    staff_client.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert client.get("/v1/models", **headers(key)).status_code == 401
