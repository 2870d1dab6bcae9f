"""Request serializers share one set of fields per class (serializers.RequestSerializer)."""

import threading

from generation.api.serializers import V2GenerateRequestSerializer


def _parse(body: dict) -> V2GenerateRequestSerializer:
    serializer = V2GenerateRequestSerializer(data=body)
    serializer.is_valid()
    return serializer


def test_fields_are_built_once_per_class_not_per_request():
    assert _parse({}).fields is _parse({}).fields


def test_a_refused_body_leaves_nothing_for_the_next_one():
    refused = _parse({"prompt": "", "model": "imagen-fast", "parameters": {"width": 7}})
    accepted = _parse({"prompt": "a fox", "model": "imagen-fast", "parameters": {"width": 512}})
    assert set(refused.errors) == {"prompt", "parameters"}
    assert accepted.errors == {}
    assert accepted.validated_data["parameters"]["width"] == 512


def test_concurrent_requests_each_get_their_own_answer():
    widths = list(range(256, 2049, 8))
    results = {}

    def parse(width):
        serializer = _parse(
            {"prompt": "a fox", "model": "imagen-fast", "parameters": {"width": width}}
        )
        results[width] = serializer.validated_data["parameters"]["width"]

    threads = [threading.Thread(target=parse, args=(width,)) for width in widths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {width: width for width in widths}
