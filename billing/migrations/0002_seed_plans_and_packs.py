from django.db import migrations

from billing.plans import CREDIT_PACKS, PLANS


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    CreditPack = apps.get_model("billing", "CreditPack")
    for slug, fields in PLANS.items():
        Plan.objects.get_or_create(slug=slug, defaults=fields)
    for pack in CREDIT_PACKS:
        CreditPack.objects.get_or_create(name=pack["name"], defaults=pack)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
