"""The staff usage report: daily rollups, the admin page, its CSV export and its filters.

The numbers are checked against a small set of jobs and invoices counted by hand:

    day 1 (Nov 10)  acme (pro):  completed 2 images / 2 credits, completed 1 / 1,
                                 failed content_moderated (1 image asked)
                    beta (free): failed engine_error, completed 1 image / 1 credit
                                 (the last second of the day)
    day 2 (Nov 11)  acme:        completed 4 images / 8 credits
                    beta:        failed content_moderated, queued (the first second of the day),
                                 a prompt refused by moderation (no job)
    day 3 (Nov 12)  gamma (pro): completed 1 image / 5 credits (outside the range asked for)

    invoices        acme paid $29.00 on day 1, acme void $10.00 on day 2,
                    beta paid $5.00 and €4.00 on day 2, gamma paid $99.00 on day 3
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from itertools import count

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice
from generation.models import Job, PromptRefusal, PromptRefusalReason
from reporting import tasks
from reporting.models import RevenueRollup, UsageRollup
from reporting.services import rollup_usage
from tests.accounts.factories import OrganizationFactory, PlanFactory, UserFactory
from tests.generation.factories import JobFactory

pytestmark = pytest.mark.django_db

DAY_1, DAY_2, DAY_3 = date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)
REPORT_URL = "/admin/reporting/usagereport/"
RANGE = {"start": "2026-11-10", "end": "2026-11-11"}
_invoice_numbers = count(1)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def job(organization, day_time: datetime, status=Job.Status.COMPLETED, **fields):
    return JobFactory(organization=organization, created_at=day_time, status=status, **fields)


def prompt_refusal(organization, day_time: datetime) -> PromptRefusal:
    return PromptRefusal.objects.create(
        organization=organization,
        prompt="something rude",
        reason=PromptRefusalReason.PROFANITY,
        profanity_score=0.97,
        created_at=day_time,
    )


def invoice(organization, day_time: datetime, amount: int, currency="usd", status="paid"):
    return Invoice.objects.create(
        number=f"TEST-{next(_invoice_numbers):06d}",
        organization=organization,
        kind=Invoice.Kind.PACK,
        status=status,
        subtotal=amount,
        total=amount,
        amount_paid=amount,
        currency=currency,
        paid_at=day_time,
    )


@pytest.fixture
def counted():
    """The hand-counted jobs and invoices of the module docstring, rolled up."""
    acme = OrganizationFactory(name="Acme", plan=PlanFactory(slug="pro"))
    beta = OrganizationFactory(name="Beta", plan=PlanFactory(slug="free"))
    gamma = OrganizationFactory(name="Gamma", plan=PlanFactory(slug="pro"))
    job(acme, at(DAY_1, 9), num_images=2, credits_reserved=2, credits_used=2)
    job(acme, at(DAY_1, 10), num_images=1, credits_used=1)
    job(acme, at(DAY_1, 11), Job.Status.FAILED, error_code="content_moderated")
    job(beta, at(DAY_1, 8), Job.Status.FAILED, error_code="engine_error")
    job(beta, at(DAY_1, 23, 59, 59), num_images=1, credits_used=1)
    job(acme, at(DAY_2, 9), num_images=4, credits_reserved=8, credits_used=8)
    job(beta, at(DAY_2, 10), Job.Status.FAILED, error_code="content_moderated")
    job(beta, at(DAY_2, 0, 0, 0), Job.Status.QUEUED)
    prompt_refusal(beta, at(DAY_2, 11))
    job(gamma, at(DAY_3), num_images=1, credits_reserved=5, credits_used=5)
    invoice(acme, at(DAY_1, 15), 2900)
    invoice(acme, at(DAY_2, 15), 1000, status=Invoice.Status.VOID)
    invoice(beta, at(DAY_2, 16), 500)
    invoice(beta, at(DAY_2, 17), 400, currency="eur")
    invoice(gamma, at(DAY_3, 15), 9900)
    for day in (DAY_1, DAY_2, DAY_3):
        rollup_usage(day=day)
    return {"acme": acme, "beta": beta, "gamma": gamma}


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def shown(response, element_id: str) -> str:
    """The text of the element with `element_id` (the totals are single text nodes)."""
    content = response.content.decode()
    start = content.index(f'id="{element_id}">') + len(f'id="{element_id}">')
    return content[start : content.index("<", start)].strip()


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_report_totals_match_the_hand_count(staff_client, counted):
    response = staff_client.get(REPORT_URL, RANGE)
    assert response.status_code == 200
    assert shown(response, "total-submissions") == "8"
    assert shown(response, "total-images") == "8"
    assert shown(response, "total-credits") == "12"
    assert shown(response, "total-failed") == "3"
    assert shown(response, "moderation-rate") == "33.33 %"  # 3 refused of 9 submitted
    assert shown(response, "total-refused") == "3"
    assert shown(response, "revenue-usd") == "$34.00"
    assert shown(response, "revenue-eur") == "€4.00"


def test_report_draws_the_charts_inline(staff_client, counted):
    content = staff_client.get(REPORT_URL, RANGE).content.decode()
    assert content.count('<svg class="usage-chart"') == 4  # submissions, credits, usd, eur
    assert "<script" not in content.split('id="content-main"')[1]


def test_per_day_csv_matches_the_hand_count(staff_client, counted):
    response = staff_client.get(REPORT_URL + "export/days.csv", RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert csv_rows(response) == [
        [
            "date",
            "submissions",
            "images",
            "credits_used",
            "failed_jobs",
            "moderated_jobs",
            "refused_prompts",
            "moderation_rate_percent",
            "revenue_eur",
            "revenue_usd",
        ],
        ["2026-11-10", "5", "4", "4", "2", "1", "0", "20.00", "0.00", "29.00"],
        ["2026-11-11", "3", "4", "8", "1", "1", "1", "50.00", "4.00", "5.00"],
    ]


def test_per_organization_csv_matches_the_hand_count(staff_client, counted):
    response = staff_client.get(REPORT_URL + "export/organizations.csv", RANGE)
    acme, beta = counted["acme"], counted["beta"]
    assert csv_rows(response)[1:] == [
        [
            str(acme.pk),
            "Acme",
            acme.slug,
            "pro",
            "4",
            "7",
            "11",
            "1",
            "1",
            "0",
            "25.00",
            "0.00",
            "29.00",
        ],
        [
            *(str(beta.pk), "Beta", beta.slug, "free"),
            *("4", "1", "1", "2", "1", "1", "40.00", "4.00", "5.00"),
        ],
    ]


def test_top_organizations_are_ranked_by_credits_used(staff_client, counted):
    response = staff_client.get(REPORT_URL, {"start": "2026-11-10", "end": "2026-11-12"})
    table = response.content.decode().split('id="top-organizations"')[1].split("</table>")[0]
    assert table.index("Acme") < table.index("Gamma") < table.index("Beta")


def test_plan_filter_keeps_only_that_plans_organizations(staff_client, counted):
    response = staff_client.get(REPORT_URL, {**RANGE, "plan": "pro"})
    assert shown(response, "total-submissions") == "4"
    assert shown(response, "total-credits") == "11"
    assert shown(response, "revenue-usd") == "$29.00"
    assert 'id="revenue-eur"' not in response.content.decode()
    rows = csv_rows(
        staff_client.get(REPORT_URL + "export/organizations.csv", {**RANGE, "plan": "pro"})
    )
    assert [row[1] for row in rows[1:]] == ["Acme"]


def test_date_filter_moves_the_range(staff_client, counted):
    response = staff_client.get(REPORT_URL, {"start": "2026-11-11", "end": "2026-11-12"})
    assert shown(response, "total-submissions") == "4"  # day 2's three and gamma's one
    assert shown(response, "total-credits") == "13"
    assert shown(response, "revenue-usd") == "$104.00"
    rows = csv_rows(
        staff_client.get(
            REPORT_URL + "export/days.csv", {"start": "2026-11-11", "end": "2026-11-12"}
        )
    )
    assert [row[0] for row in rows[1:]] == ["2026-11-11", "2026-11-12"]


def test_default_range_is_the_last_30_days(staff_client):
    organization = OrganizationFactory()
    now = datetime.now(tz=UTC)
    job(organization, now, credits_used=3)
    job(organization, now - timedelta(days=30), credits_used=100)
    rollup_usage(day=now.date())
    rollup_usage(day=(now - timedelta(days=30)).date())
    response = staff_client.get(REPORT_URL)
    assert shown(response, "total-credits") == "3"
    assert len(csv_rows(staff_client.get(REPORT_URL + "export/days.csv"))) == 1 + 30


def test_a_start_after_the_end_is_refused(staff_client):
    response = staff_client.get(REPORT_URL, {"start": "2026-11-12", "end": "2026-11-10"})
    assert response.status_code == 200
    assert "The start date is after the end date." in response.content.decode()
    assert 'id="total-submissions"' not in response.content.decode()
    csv_response = staff_client.get(
        REPORT_URL + "export/days.csv", {"start": "2026-11-12", "end": "2026-11-10"}
    )
    assert csv_response.status_code == 400


def test_rollup_is_idempotent(counted):
    before = list(UsageRollup.objects.order_by("date", "organization").values())
    revenue_before = list(
        RevenueRollup.objects.order_by("date", "organization", "currency").values()
    )
    rollup_usage(day=DAY_1)
    rollup_usage(day=DAY_2)
    after = list(UsageRollup.objects.order_by("date", "organization").values())
    revenue_after = list(
        RevenueRollup.objects.order_by("date", "organization", "currency").values()
    )
    ignore = {"updated_at"}
    assert [{k: v for k, v in row.items() if k not in ignore} for row in after] == [
        {k: v for k, v in row.items() if k not in ignore} for row in before
    ]
    assert [{k: v for k, v in row.items() if k not in ignore} for row in revenue_after] == [
        {k: v for k, v in row.items() if k not in ignore} for row in revenue_before
    ]


def test_rerunning_after_new_jobs_updates_the_day(staff_client, counted):
    job(counted["beta"], at(DAY_2, 18), num_images=3, credits_used=3)
    job(counted["gamma"], at(DAY_2, 19), Job.Status.FAILED, error_code="content_moderated")
    invoice(counted["gamma"], at(DAY_2, 20), 100)
    rollup_usage(day=DAY_2)
    rows = csv_rows(staff_client.get(REPORT_URL + "export/days.csv", RANGE))
    assert rows[2] == ["2026-11-11", "5", "7", "11", "2", "2", "1", "50.00", "4.00", "6.00"]


def test_a_day_with_only_a_refused_prompt_reports_it_refused(staff_client):
    organization = OrganizationFactory()
    prompt_refusal(organization, at(DAY_3, 9))
    rollup_usage(day=DAY_3)
    response = staff_client.get(REPORT_URL, {"start": "2026-11-12", "end": "2026-11-12"})
    assert shown(response, "total-refused") == "1"
    assert shown(response, "moderation-rate") == "100.00 %"


def test_rerunning_after_jobs_are_gone_drops_their_rows(counted):
    Job.objects.filter(organization=counted["gamma"]).delete()
    Invoice.objects.filter(organization=counted["gamma"]).delete()
    rollup_usage(day=DAY_3)
    assert not UsageRollup.objects.filter(date=DAY_3).exists()
    assert not RevenueRollup.objects.filter(date=DAY_3).exists()


def test_beat_task_rolls_up_today_every_ten_minutes():
    schedule = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "reporting.tasks.rollup_recent_usage"
    ]
    assert [entry["schedule"] for entry in schedule] == [600]
    organization = OrganizationFactory()
    job(organization, datetime.now(tz=UTC), num_images=2, credits_used=2)
    tasks.rollup_recent_usage()
    row = UsageRollup.objects.get(organization=organization)
    assert (row.date, row.submissions, row.images) == (datetime.now(tz=UTC).date(), 1, 2)


def test_report_is_linked_from_the_admin_index(staff_client):
    assert REPORT_URL in staff_client.get("/admin/").content.decode()


@pytest.mark.parametrize("path", [REPORT_URL, REPORT_URL + "export/days.csv"])
def test_anonymous_visitors_are_sent_to_the_admin_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("path", [REPORT_URL, REPORT_URL + "export/organizations.csv"])
def test_customers_are_refused(client, path, counted):
    client.force_login(UserFactory())
    response = client.get(path, RANGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_without_the_view_permission_are_refused(client, counted):
    client.force_login(UserFactory(is_staff=True))
    assert client.get(REPORT_URL, RANGE).status_code == 403
    assert client.get(REPORT_URL + "export/days.csv", RANGE).status_code == 403


def _report_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(REPORT_URL, {**RANGE, "plan": "pro"}).status_code == 200
    return len(queries)


def test_report_runs_the_same_queries_whatever_the_number_of_jobs(staff_client, counted):
    few = _report_queries(staff_client)
    for index in range(30):
        organization = OrganizationFactory(plan=PlanFactory(slug="pro"))
        for day in (DAY_1, DAY_2):
            job(organization, at(day, index % 24), num_images=2, credits_used=index)
            invoice(organization, at(day, 1), 100 + index)
    for day in (DAY_1, DAY_2):
        rollup_usage(day=day)
    assert _report_queries(staff_client) == few


def test_a_day_keeps_the_plan_the_organization_had_then(staff_client):
    organization = OrganizationFactory(name="Switcher", plan=PlanFactory(slug="free"))
    job(organization, at(DAY_1), credits_used=1)
    job(organization, at(DAY_2), credits_used=10)
    rollup_usage(day=DAY_1)
    organization.plan = PlanFactory(slug="pro")
    organization.save(update_fields=["plan"])
    rollup_usage(day=DAY_2)
    assert shown(staff_client.get(REPORT_URL, {**RANGE, "plan": "free"}), "total-credits") == "1"
    assert shown(staff_client.get(REPORT_URL, {**RANGE, "plan": "pro"}), "total-credits") == "10"
    rows = csv_rows(staff_client.get(REPORT_URL + "export/organizations.csv", RANGE))
    assert [(row[1], row[3], row[6]) for row in rows[1:]] == [("Switcher", "pro", "11")]


def test_csv_does_not_let_an_organization_name_run_as_a_formula(staff_client):
    organization = OrganizationFactory(name="=HYPERLINK(1)")
    job(organization, at(DAY_1))
    rollup_usage(day=DAY_1)
    rows = csv_rows(staff_client.get(REPORT_URL + "export/organizations.csv", RANGE))
    assert rows[1][1] == "'=HYPERLINK(1)"


def test_rollup_command_backfills_a_range(counted):
    UsageRollup.objects.all().delete()
    RevenueRollup.objects.all().delete()
    out = io.StringIO()
    call_command("rollup_usage", "--from", "2026-11-10", "--to", "2026-11-11", stdout=out)
    assert set(UsageRollup.objects.values_list("date", flat=True)) == {DAY_1, DAY_2}
    assert RevenueRollup.objects.filter(date=DAY_2).count() == 2  # beta's USD and EUR
    assert "2026-11-11: 2 organization(s), 2 revenue row(s)" in out.getvalue()


@pytest.mark.parametrize(
    ("bookmark", "report"),
    [
        ("/admin/billing/usagereport/", REPORT_URL),
        ("/admin/billing/usagereport/export/days.csv", REPORT_URL + "export/days.csv"),
    ],
)
def test_a_bookmark_of_the_reports_billing_address_lands_on_the_report(
    staff_client, bookmark, report
):
    response = staff_client.get(bookmark, RANGE, follow=True)
    assert response.redirect_chain == [(f"{report}?start=2026-11-10&end=2026-11-11", 301)]
    assert response.status_code == 200
