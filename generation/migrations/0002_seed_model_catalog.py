from django.db import migrations

from generation.model_seeds import SEED_MODELS


def seed(apps, schema_editor):
    ModelCatalogEntry = apps.get_model("generation", "ModelCatalogEntry")
    for fields in SEED_MODELS:
        ModelCatalogEntry.objects.get_or_create(
            id=fields["id"], defaults={k: v for k, v in fields.items() if k != "id"}
        )


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
