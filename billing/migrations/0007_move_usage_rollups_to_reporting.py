"""The usage rollups moved to the reporting app, which keeps their tables: billing lets go
of the models in the migration state only, and no row is touched (reporting's 0001)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0006_pack_purchase_records_what_it_grants"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="revenuerollup",
                    name="organization",
                ),
                migrations.RemoveField(
                    model_name="usagerollup",
                    name="organization",
                ),
                migrations.DeleteModel(
                    name="UsageReport",
                ),
                migrations.DeleteModel(
                    name="RevenueRollup",
                ),
                migrations.DeleteModel(
                    name="UsageRollup",
                ),
            ],
            database_operations=[],
        ),
    ]
