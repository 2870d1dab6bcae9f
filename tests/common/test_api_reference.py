"""The OpenAPI document speaks to customers: every operation, parameter, schema and field
has its text from docs/api/reference.yaml, and no internal docstring reaches it."""

import ast
import itertools
import json
import re
import shlex

import pytest

from common.api.schema import EXAMPLES, public_reference, required_examples

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


def _examples(schema):
    """Each operation's examples by their name in docs/api/reference.yaml (`curl`, ...)."""
    names = {label: name for name, (_, label, _) in EXAMPLES.items()}
    for operation_name, operation in _operations(schema):
        samples = operation.get("x-codeSamples", [])
        yield operation_name, {names[sample["label"]]: sample["source"] for sample in samples}


def test_every_operation_has_a_curl_and_a_python_example_and_openais_have_an_sdk_one(schema):
    missing = [
        f"{name}: {wanted}"
        for name, examples in _examples(schema)
        for wanted in required_examples(name.split(" ", 1)[1])
        if not examples.get(wanted, "").strip()
    ]
    assert missing == []


def test_the_docs_page_shows_the_examples_in_each_description(schema):
    hidden = [
        name
        for name, operation in _operations(schema)
        for sample in operation.get("x-codeSamples", [])
        if sample["source"] not in operation["description"]
    ]
    assert hidden == []


def _fixed_part(path: str) -> str:
    """The path up to its first parameter: what every example of it must call."""
    return path.split("{", 1)[0]


def test_every_example_calls_the_operation_it_documents(schema):
    wrong = []
    for name, examples in _examples(schema):
        method, path = name.split(" ", 1)
        curl, python = examples.get("curl", ""), examples.get("python", "")
        curl_method = "POST" if " -d " in curl or " -F " in curl else "GET"
        curl_method = re.search(r"-X (\w+)", curl).group(1) if " -X " in curl else curl_method
        if f"$IMAGEN_BASE_URL{_fixed_part(path)}" not in curl or curl_method != method:
            wrong.append(f"{name}: curl")
        if f"requests.{method.lower()}(" not in python or _fixed_part(path) not in python:
            wrong.append(f"{name}: python")
    assert wrong == []


def _curl_fields(curl: str) -> set[str]:
    words = shlex.split(curl.replace("\\\n", " "))
    fields = set()
    for flag, value in itertools.pairwise(words):
        if flag == "-d":
            fields |= set(json.loads(value))
        elif flag == "-F":
            # `image[]` is how a form sends several files to the one field `image`.
            fields.add(value.split("=", 1)[0].removesuffix("[]"))
    return fields


def _curl_query(curl: str) -> set[str]:
    url = next((word for word in shlex.split(curl) if word.startswith("$IMAGEN_BASE_URL")), "")
    query = url.split("?", 1)[1] if "?" in url else ""
    return {pair.split("=", 1)[0] for pair in query.split("&") if pair}


def _requests_arguments(python: str) -> dict[str, set[str]]:
    """The keys of the dict literals passed to requests as json=, data=, files=, params=."""
    arguments: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(python)):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg in ("json", "data", "files", "params") and isinstance(
                    keyword.value, ast.Dict
                ):
                    keys = keyword.value.keys
                    names = {key.value for key in keys if isinstance(key, ast.Constant)}
                    arguments.setdefault(keyword.arg, set()).update(names)
    return arguments


def _body_fields(schema, operation) -> set[str]:
    fields = set()
    for content in operation.get("requestBody", {}).get("content", {}).values():
        component = content["schema"]["$ref"].rsplit("/", 1)[-1]
        fields |= set(schema["components"]["schemas"][component].get("properties", {}))
    return fields


def test_examples_send_only_fields_and_parameters_the_operation_takes(schema):
    operations = dict(_operations(schema))
    unknown = []
    for name, examples in _examples(schema):
        operation = operations[name]
        body = _body_fields(schema, operation)
        query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        curl = examples.get("curl", "")
        unknown += [f"{name} curl: {field}" for field in sorted(_curl_fields(curl) - body)]
        unknown += [f"{name} curl query: {key}" for key in sorted(_curl_query(curl) - query)]
        for argument, keys in _requests_arguments(examples.get("python", "")).items():
            allowed = query if argument == "params" else body
            unknown += [f"{name} python {argument}: {key}" for key in sorted(keys - allowed)]
    assert unknown == []
