from django.db import migrations, models

# The engines' queues when this migration was written (generation.engines); any other
# engine's jobs go to `local`.
ENGINE_QUEUES = {"openai_compatible": "upstream", "diffusers": "gpu"}


def set_queue_of_unfinished_jobs(apps, schema_editor):
    """Jobs waiting or running at the upgrade wait on their engine family's queue."""
    Job = apps.get_model("generation", "Job")
    for engine, queue in ENGINE_QUEUES.items():
        Job.objects.filter(status__in=["queued", "running"], model__engine=engine).update(
            queue=queue
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_monthly_credit_budget_and_key_limit"),
        ("generation", "0007_job_output_format_and_openai_fields"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="queue",
            field=models.CharField(default="local", max_length=32),
        ),
        migrations.AddField(
            model_name="job",
            name="turn",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(set_queue_of_unfinished_jobs, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "queued")),
                fields=["organization", "queue", "created_at"],
                name="job_waiting",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "running")),
                fields=["organization"],
                name="job_org_running",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("started_at__isnull", False)),
                fields=["organization", "started_at"],
                name="job_org_last_start",
            ),
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(
                condition=models.Q(("status", "running")), fields=["turn"], name="job_running_turn"
            ),
        ),
    ]
