"""The OpenAPI document speaks to customers: every operation, parameter, schema and field
has its text from docs/api/reference.yaml, and no internal docstring reaches it."""

import pytest

from common.api.schema import public_reference

pytestmark = pytest.mark.django_db

# Words of our code's docstrings that mean nothing to a customer.
INTERNAL_WORDS = ("self.", "serializer", "selector", "DRF", "queryset", "deep-cop")


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        return Client().get("/openapi.json").json()


def _operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def _texts(schema):
    yield schema["info"]["description"]
    for _, operation in _operations(schema):
        yield operation.get("summary", "")
        yield operation.get("description", "")
        for parameter in operation.get("parameters", []):
            yield parameter.get("description", "")
    for component in schema["components"]["schemas"].values():
        yield component.get("description", "")
        for field in (component.get("properties") or {}).values():
            yield field.get("description", "")


def test_every_operation_has_a_summary_and_a_description(schema):
    undescribed = [
        name
        for name, operation in _operations(schema)
        if not operation.get("summary") or not operation.get("description")
    ]
    assert undescribed == []


def test_every_parameter_is_described(schema):
    undescribed = [
        f"{name} {parameter['name']}"
        for name, operation in _operations(schema)
        for parameter in operation.get("parameters", [])
        if not parameter.get("description")
    ]
    assert undescribed == []


def test_every_schema_and_every_field_is_described(schema):
    undescribed = []
    for name, component in schema["components"]["schemas"].items():
        if not component.get("description"):
            undescribed.append(name)
        undescribed += [
            f"{name}.{field}"
            for field, definition in (component.get("properties") or {}).items()
            if not definition.get("description") and "$ref" not in definition
        ]
    assert undescribed == []


def test_schema_names_read_as_product_names(schema):
    names = list(schema["components"]["schemas"])
    assert [name for name in names if name.endswith("RequestRequest")] == []
    assert {"BlankEnum", "NullEnum"}.isdisjoint(names)


def test_no_internal_docstring_reaches_the_document(schema):
    leaks = [text for text in _texts(schema) if any(word in text for word in INTERNAL_WORDS)]
    assert leaks == []


def test_the_reference_names_only_what_exists(schema):
    reference = public_reference()
    operations = dict(_operations(schema))
    assert sorted(set(reference["operations"]) - set(operations)) == []
    components = schema["components"]["schemas"]
    assert sorted(set(reference["schemas"]) - set(components)) == []
    stale_properties = [
        f"{name}.{field}"
        for name, text in reference["schemas"].items()
        for field in text.get("properties", {})
        if field not in (components[name].get("properties") or {})
    ]
    assert stale_properties == []


def test_the_guides_cover_what_a_customer_needs_first(schema):
    guide = schema["info"]["description"]
    for heading in (
        "Authentication",
        "Pricing",
        "Rate limits",
        "Idempotency",
        "Webhooks",
        "Image URLs",
    ):
        assert f"## {heading}" in guide
