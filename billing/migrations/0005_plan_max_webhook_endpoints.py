from django.db import migrations, models

# The values at the time of this migration, not billing.plans (which may change later).
MAX_WEBHOOK_ENDPOINTS = {"free": 10, "pro": 50, "enterprise": 500}


def set_caps(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for slug, cap in MAX_WEBHOOK_ENDPOINTS.items():
        Plan.objects.filter(slug=slug).update(max_webhook_endpoints=cap)


class Migration(migrations.Migration):
    dependencies = [("billing", "0004_usage_rollups")]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="max_webhook_endpoints",
            field=models.PositiveIntegerField(default=10),
        ),
        migrations.RunPython(set_caps, migrations.RunPython.noop),
    ]
