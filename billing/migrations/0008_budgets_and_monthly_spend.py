"""The keys' monthly spend counters, budget alerts, and the API key of a job's entries.

The month under way starts with what the organizations' jobs already took this month
(reservations less refunds, on the organization's row), so a budget set today counts the
whole month.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import Sum
from django.utils import timezone


def count_this_months_spend(apps, schema_editor):
    CreditLedgerEntry = apps.get_model("billing", "CreditLedgerEntry")
    Organization = apps.get_model("accounts", "Organization")
    month = timezone.now().date().replace(day=1)
    spent = (
        CreditLedgerEntry.objects.filter(
            kind__in=["reserve", "refund"], created_at__date__gte=month
        )
        .values("organization_id")
        .annotate(taken=Sum("amount"))
    )
    for row in spent:
        Organization.objects.filter(pk=row["organization_id"]).update(
            spend_month=month, month_spend=max(-row["taken"], 0)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_monthly_credit_budget_and_key_limit"),
        ("billing", "0007_move_usage_rollups_to_reporting"),
    ]

    operations = [
        migrations.AddField(
            model_name="creditledgerentry",
            name="api_key",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="accounts.apikey",
            ),
        ),
        migrations.CreateModel(
            name="ApiKeyMonthlySpend",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.DateField(help_text="The month's first day.")),
                ("credits", models.BigIntegerField(default=0)),
                (
                    "api_key",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.apikey",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("api_key", "month"), name="one_spend_per_key_month"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="BudgetAlert",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("month", models.DateField(help_text="The month's first day.")),
                (
                    "threshold",
                    models.PositiveSmallIntegerField(choices=[(80, "80 %"), (100, "100 %")]),
                ),
                (
                    "budget",
                    models.PositiveIntegerField(
                        help_text="The budget when the threshold was reached."
                    ),
                ),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.organization",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "month", "threshold"),
                        name="one_budget_alert_per_month",
                    )
                ],
            },
        ),
        migrations.RunPython(count_this_months_spend, migrations.RunPython.noop),
    ]
