from rest_framework import serializers


class OrganizationSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(source="public_id")
    name = serializers.CharField()
    slug = serializers.CharField()


class PlanSummarySerializer(serializers.Serializer):
    id = serializers.CharField(source="plan.slug")
    name = serializers.CharField(source="plan.name")
    requests_per_minute = serializers.IntegerField()
    requests_per_day = serializers.IntegerField()


class CreditsSerializer(serializers.Serializer):
    balance = serializers.IntegerField(source="credit_balance")


class AccountSerializer(serializers.Serializer):
    """The account; `webhook_signing_secret` is null unless context `reveal_secrets` is true."""

    organization = OrganizationSummarySerializer(source="*")
    plan = PlanSummarySerializer(source="*")
    credits = CreditsSerializer(source="*")
    webhook_signing_secret = serializers.SerializerMethodField()

    def get_webhook_signing_secret(self, organization) -> str | None:
        return organization.webhook_signing_secret if self.context["reveal_secrets"] else None
