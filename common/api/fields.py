from datetime import UTC

from rest_framework import serializers


class UtcDateTimeField(serializers.DateTimeField):
    """ISO 8601 in UTC with a Z, to the second, as every API timestamp: 2024-01-15T10:30:00Z."""

    def to_representation(self, value):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None
