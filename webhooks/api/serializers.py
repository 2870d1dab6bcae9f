from rest_framework import serializers

from common.api.fields import UtcDateTimeField
from webhooks.models import EventType


class EndpointCreateSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2048)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values), required=False, allow_empty=False
    )
    description = serializers.CharField(
        max_length=500, required=False, allow_blank=True, default=""
    )


class EndpointSerializer(serializers.Serializer):
    """An endpoint; `secret` is null unless context `reveal_secrets` is true."""

    id = serializers.CharField(source="public_id")
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    secret = serializers.SerializerMethodField()
    enabled = serializers.BooleanField()
    created_at = UtcDateTimeField()

    def get_secret(self, endpoint) -> str | None:
        return endpoint.secret if self.context["reveal_secrets"] else None


class EndpointListSerializer(serializers.Serializer):
    data = EndpointSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)


ENDPOINT_LIST_LIMIT_MAX, DEFAULT_ENDPOINT_LIST_LIMIT = 100, 20


class EndpointListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(
        min_value=1,
        max_value=ENDPOINT_LIST_LIMIT_MAX,
        default=DEFAULT_ENDPOINT_LIST_LIMIT,
        error_messages={
            "min_value": f"Must be between 1 and {ENDPOINT_LIST_LIMIT_MAX}.",
            "max_value": f"Must be between 1 and {ENDPOINT_LIST_LIMIT_MAX}.",
            "invalid": "Must be an integer.",
        },
    )
    cursor = serializers.CharField(required=False)


class AttemptSerializer(serializers.Serializer):
    at = UtcDateTimeField(source="attempted_at")
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField()
    error = serializers.SerializerMethodField()

    def get_error(self, attempt) -> str | None:
        return attempt.error or None


class DeliverySerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    event_id = serializers.CharField(source="event.public_id")
    event_type = serializers.CharField(source="event.type")
    status = serializers.CharField()
    attempts = AttemptSerializer(many=True)


class DeliveryListSerializer(serializers.Serializer):
    data = DeliverySerializer(many=True)


class DeliveryListQuerySerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=50)


class ResendFailedSerializer(serializers.Serializer):
    since = serializers.DateTimeField()


class ResendFailedResultSerializer(serializers.Serializer):
    resent = serializers.IntegerField()
