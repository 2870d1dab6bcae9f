"""Moving the rollups from billing to reporting kept their tables: a database migrated from
before the move keeps every row, and the report's view permission stays granted."""

from datetime import date

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reporting.models import RevenueRollup, UsageRollup
from tests.accounts.factories import OrganizationFactory, UserFactory

BEFORE_THE_MOVE = [("billing", "0006_pack_purchase_records_what_it_grants")]


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    return executor


@pytest.fixture
def before_the_move():
    executor = _migrate(BEFORE_THE_MOVE)
    yield executor.loader.project_state(BEFORE_THE_MOVE).apps
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_migrating_an_existing_database_keeps_the_rollup_rows(before_the_move):
    organization = OrganizationFactory()
    before_the_move.get_model("billing", "UsageRollup").objects.create(
        date=date(2026, 11, 10), organization_id=organization.pk, plan_slug="pro", submissions=7
    )
    before_the_move.get_model("billing", "RevenueRollup").objects.create(
        date=date(2026, 11, 10),
        organization_id=organization.pk,
        plan_slug="pro",
        currency="usd",
        amount_cents=2900,
    )

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert list(UsageRollup.objects.values_list("organization", "submissions")) == [
        (organization.pk, 7)
    ]
    assert list(RevenueRollup.objects.values_list("organization", "amount_cents")) == [
        (organization.pk, 2900)
    ]


@pytest.mark.django_db(transaction=True)
def test_staff_given_the_report_before_the_move_still_see_it(before_the_move, client):
    billing_report = ContentType.objects.get(app_label="billing", model="usagereport")
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(content_type=billing_report, codename="view_usagereport")
    )

    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    client.force_login(staff)
    assert client.get("/admin/reporting/usagereport/").status_code == 200
