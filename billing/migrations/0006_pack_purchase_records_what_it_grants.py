from django.db import migrations, models
from django.db.models import OuterRef, Q, Subquery


def copy_from_pack(apps, schema_editor):
    """Purchases made before this recorded nothing of their own: they cost what their pack does."""
    PackPurchase = apps.get_model("billing", "PackPurchase")
    CreditPack = apps.get_model("billing", "CreditPack")
    pack = CreditPack.objects.filter(pk=OuterRef("pack_id"))
    PackPurchase.objects.update(
        credits=Subquery(pack.values("credits")),
        amount_cents=Subquery(pack.values("price_cents")),
        currency=Subquery(pack.values("currency")),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_plan_max_webhook_endpoints"),
    ]

    operations = [
        migrations.AddField(
            model_name="packpurchase",
            name="credits",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="packpurchase",
            name="amount_cents",
            field=models.PositiveIntegerField(null=True),
        ),
        migrations.AddField(
            model_name="packpurchase",
            name="currency",
            field=models.CharField(max_length=3, null=True),
        ),
        migrations.RunPython(copy_from_pack, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="packpurchase",
            name="credits",
            field=models.PositiveIntegerField(),
        ),
        migrations.AlterField(
            model_name="packpurchase",
            name="amount_cents",
            field=models.PositiveIntegerField(),
        ),
        migrations.AlterField(
            model_name="packpurchase",
            name="currency",
            field=models.CharField(max_length=3),
        ),
        migrations.AlterField(
            model_name="packpurchase",
            name="stripe_payment_intent_id",
            field=models.CharField(blank=True, max_length=255),
        ),
        migrations.AddConstraint(
            model_name="packpurchase",
            constraint=models.UniqueConstraint(
                condition=Q(("stripe_payment_intent_id", ""), _negated=True),
                fields=("stripe_payment_intent_id",),
                name="one_purchase_per_payment_intent",
            ),
        ),
    ]
