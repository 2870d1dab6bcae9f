from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("generation", "0005_release_approved_images_from_quarantine")]

    operations = [
        migrations.AddField(
            model_name="job",
            name="output_format",
            field=models.CharField(
                choices=[("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WebP")],
                default="png",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="output_compression",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="job",
            name="background",
            field=models.CharField(
                choices=[("auto", "Auto"), ("opaque", "Opaque"), ("transparent", "Transparent")],
                default="opaque",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="quality",
            field=models.CharField(blank=True, max_length=8),
        ),
        migrations.AddField(
            model_name="job",
            name="partial_images",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="job",
            name="end_user",
            field=models.CharField(blank=True, max_length=256, verbose_name="user"),
        ),
        migrations.AddField(
            model_name="job",
            name="safety_identifier",
            field=models.CharField(blank=True, max_length=256),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("output_compression__isnull", True),
                    ("output_compression__lte", 100),
                    _connector="OR",
                ),
                name="job_output_compression_at_most_100",
            ),
        ),
        migrations.AddConstraint(
            model_name="job",
            constraint=models.CheckConstraint(
                condition=models.Q(("partial_images__lte", 3)),
                name="job_at_most_3_partial_images",
            ),
        ),
    ]
