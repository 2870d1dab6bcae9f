"""DRF serializers made once per class instead of once per request.

DRF deep-copies every declared field (and, for a nested serializer, its fields) each time a
serializer is made: more CPU than validating a request body or rendering a job. Neither
validation nor `to_representation` keeps state on a field (a ListSerializer validates every
item with one child), so one bound set of fields per class serves every request. This
leans on `Serializer.fields` being a cached_property whose `func` builds the fields.
"""

import functools

from django.utils.functional import cached_property
from rest_framework import serializers


def render(serializer_class: type[serializers.Serializer], instance) -> dict:
    """`serializer_class(instance).data`, from one serializer per class (the hot responses:
    submissions and job reads)."""
    return _shared_instance(serializer_class).to_representation(instance)


@functools.cache
def _shared_instance(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    return serializer_class()


class RequestSerializer(serializers.Serializer):
    """A request body's serializer whose fields are built once per class, not per request;
    the serializer itself, with the data, validated_data and errors, is made per request."""

    @cached_property
    def fields(self):
        return _fields_of(type(self))


@functools.cache
def _fields_of(serializer_class: type[RequestSerializer]):
    return serializers.Serializer.fields.func(serializer_class())
