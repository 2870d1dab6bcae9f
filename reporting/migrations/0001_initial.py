"""The usage rollups, taken over from billing with their tables (billing_usagerollup,
billing_revenuerollup, created by billing's 0004): the models enter the migration state only,
so every row is kept. Their content types move too, so the view permission staff were given
on the usage report, and the admin's history, stay theirs."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

MODELS = ("usagerollup", "revenuerollup", "usagereport")


def move_content_types(from_label, to_label):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        db = schema_editor.connection.alias
        for model in MODELS:
            if not ContentType.objects.using(db).filter(app_label=to_label, model=model).exists():
                ContentType.objects.using(db).filter(app_label=from_label, model=model).update(
                    app_label=to_label
                )

    return move


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_initial"),
        ("billing", "0007_move_usage_rollups_to_reporting"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="UsageRollup",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("date", models.DateField()),
                        ("plan_slug", models.SlugField(max_length=32)),
                        ("submissions", models.PositiveIntegerField(default=0)),
                        ("images", models.PositiveIntegerField(default=0)),
                        ("credits_used", models.BigIntegerField(default=0)),
                        ("failed_jobs", models.PositiveIntegerField(default=0)),
                        ("moderated_jobs", models.PositiveIntegerField(default=0)),
                        ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
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
                        "db_table": "billing_usagerollup",
                        "ordering": ["date", "organization"],
                    },
                ),
                migrations.CreateModel(
                    name="UsageReport",
                    fields=[],
                    options={
                        "verbose_name": "usage report",
                        "verbose_name_plural": "usage report",
                        "proxy": True,
                        "indexes": [],
                        "constraints": [],
                    },
                    bases=("reporting.usagerollup",),
                ),
                migrations.CreateModel(
                    name="RevenueRollup",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("date", models.DateField()),
                        ("plan_slug", models.SlugField(max_length=32)),
                        ("currency", models.CharField(max_length=3)),
                        ("amount_cents", models.BigIntegerField(default=0)),
                        ("invoices", models.PositiveIntegerField(default=0)),
                        ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
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
                        "db_table": "billing_revenuerollup",
                        "ordering": ["date", "organization", "currency"],
                        "indexes": [
                            models.Index(fields=["plan_slug", "date"], name="revenue_plan_date")
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("date", "organization", "currency"),
                                name="one_revenue_row_per_day",
                            )
                        ],
                    },
                ),
                migrations.AddIndex(
                    model_name="usagerollup",
                    index=models.Index(fields=["plan_slug", "date"], name="usage_plan_date"),
                ),
                migrations.AddConstraint(
                    model_name="usagerollup",
                    constraint=models.UniqueConstraint(
                        fields=("date", "organization"), name="one_usage_row_per_day"
                    ),
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(
            move_content_types("billing", "reporting"), move_content_types("reporting", "billing")
        ),
    ]
