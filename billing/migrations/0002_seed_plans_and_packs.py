from django.db import migrations

from billing.plans import CREDIT_PACKS, PLANS


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    CreditPack = apps.get_model("billing", "CreditPack")
    # PLANS is today's list: fields added by later migrations are theirs to set.
    known = {field.name for field in Plan._meta.get_fields()}
    for slug, fields in PLANS.items():
        defaults = {name: value for name, value in fields.items() if name in known}
        Plan.objects.get_or_create(slug=slug, defaults=defaults)
    for pack in CREDIT_PACKS:
        CreditPack.objects.get_or_create(name=pack["name"], defaults=pack)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
