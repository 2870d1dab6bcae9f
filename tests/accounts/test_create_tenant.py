import json

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from billing.models import CreditLedgerEntry

pytestmark = pytest.mark.django_db


def _create_tenant(capsys, *args):
    call_command("create_tenant", *args)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_create_tenant_prints_one_json_line_with_a_working_key(client, capsys):
    line = _create_tenant(
        capsys,
        "--email",
        "ops@example.com",
        "--org-name",
        "Acme",
        "--plan",
        "pro",
        "--credits",
        "25",
    )
    assert line["user"] == "ops@example.com"
    assert line["plan"] == "pro"
    assert line["credits"] == 25
    assert line["organization"].startswith("acme")
    response = client.get("/v1/account", HTTP_AUTHORIZATION=f"Bearer {line['api_key']}")
    assert response.status_code == 200
    assert response.json()["credits"] == {"balance": 25}
    assert response.json()["plan"]["id"] == "pro"


def test_create_tenant_grants_credits_through_the_ledger(capsys):
    line = _create_tenant(capsys, "--email", "ops@example.com", "--credits", "9")
    entry = CreditLedgerEntry.objects.get(organization__slug=line["organization"])
    assert (entry.kind, entry.amount, entry.balance_after) == ("grant", 9, 9)


def test_create_tenant_reuses_the_user_and_makes_a_new_organization(capsys):
    first = _create_tenant(capsys, "--email", "ops@example.com")
    second = _create_tenant(capsys, "--email", "OPS@example.com")
    assert User.objects.count() == 1
    assert first["organization"] != second["organization"]
    assert first["plan"] == "free"


def test_create_tenant_refuses_an_organization_over_the_persons_limit(capsys, settings):
    settings.MAX_ORGANIZATIONS_PER_USER = 1
    _create_tenant(capsys, "--email", "ops@example.com")
    with pytest.raises(CommandError, match="may own at most 1"):
        call_command("create_tenant", "--email", "ops@example.com")
