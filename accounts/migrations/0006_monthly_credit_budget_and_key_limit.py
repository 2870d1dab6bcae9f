"""Monthly budgets: the organization's budget and its month's spend, and each API key's limit."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_bound_existing_api_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="monthly_credit_limit",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="organization",
            name="month_spend",
            field=models.BigIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="organization",
            name="monthly_credit_budget",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="organization",
            name="spend_month",
            field=models.DateField(blank=True, editable=False, null=True),
        ),
    ]
