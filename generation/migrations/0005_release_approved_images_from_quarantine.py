"""Move images approved before approval moved files out of quarantine/.

Image URLs no longer serve anything under quarantine/ (generation.image_urls); an image
staff released earlier still lies there, so it moves where completed jobs keep theirs.
"""

from django.core.files.storage import default_storage
from django.db import migrations


def release(apps, schema_editor):
    JobImage = apps.get_model("generation", "JobImage")
    approved = JobImage.objects.filter(
        quarantined=False, storage_path__startswith="quarantine/"
    ).select_related("job")
    for image in approved.iterator():
        old = image.storage_path
        path = f"jobs/{image.job.organization_id}/{image.job_id}/{image.index}.png"
        try:
            with default_storage.open(old, "rb") as file:
                if default_storage.exists(path):
                    default_storage.delete(path)
                image.storage_path = default_storage.save(path, file)
        except FileNotFoundError:
            image.storage_path = ""  # deleted meanwhile: nothing to serve
        image.save(update_fields=["storage_path"])
        if image.storage_path:
            default_storage.delete(old)


class Migration(migrations.Migration):
    dependencies = [("generation", "0004_job_created_index")]

    operations = [migrations.RunPython(release, migrations.RunPython.noop)]
