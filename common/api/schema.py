"""OpenAPI post-processing: the one error shape, and the customer-facing reference text.

Any route under /v1 or /v2 can answer 401 (no key), 429 (rate limit) or 503 (queue or
database down) besides what its view lists, always as `{"error": {...}}`
(common.api.errors). The schema says so with a `default` response, so clients and
schema-driven tools (schemathesis in tests/security) know the shape of every error.

The words of the document (summaries, descriptions, every field's meaning, range and
default) are written for customers in docs/api/reference.yaml, not taken from docstrings.
"""

from functools import cache

import yaml
from django.conf import settings

ERROR_COMPONENT = "ErrorResponse"

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "string", "nullable": True},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Only for invalid_parameters: each field and its messages.",
                },
            },
            "required": ["code", "message", "details"],
        }
    },
    "required": ["error"],
}


def document_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(("/v1/", "/v2/")):
            continue
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault(
                "default",
                {
                    "description": "An error, in the one error shape of the API",
                    "content": {"application/json": {"schema": reference}},
                },
            )
    return result


# The examples an operation may have in docs/api/reference.yaml: how each is named in the
# OpenAPI `x-codeSamples` (lang, label) and fenced in the description.
EXAMPLES = {
    "curl": ("Shell", "curl", "bash"),
    "python": ("Python", "Python (requests)", "python"),
    "openai": ("Python", "Python (openai SDK)", "python"),
}
# Every operation has these; the OpenAI-compatible ones (paths under it) also an `openai`.
REQUIRED_EXAMPLES = ("curl", "python")
OPENAI_COMPATIBLE_PREFIX = "/v1/images/"


def required_examples(path: str) -> tuple[str, ...]:
    """The examples the operations of `path` must have (tests/common/test_api_reference.py)."""
    if path.startswith(OPENAI_COMPATIBLE_PREFIX):
        return (*REQUIRED_EXAMPLES, "openai")
    return REQUIRED_EXAMPLES


def _with_examples(operation: dict, examples: dict[str, str]) -> None:
    """Show `examples` as `x-codeSamples` and, for renderers that ignore those (Swagger UI
    on /docs/), at the end of the description."""
    samples, blocks = [], []
    for name, source in examples.items():
        lang, label, fence = EXAMPLES[name]
        source = source.rstrip("\n")
        samples.append({"lang": lang, "label": label, "source": source})
        blocks.append(f"**{label}**\n\n```{fence}\n{source}\n```")
    operation["x-codeSamples"] = samples
    operation["description"] = "\n\n".join(
        [operation.get("description", "").rstrip("\n"), "#### Examples", *blocks]
    )


def _rename_references(node, renames: dict[str, str]):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                name = value.rsplit("/", 1)[-1]
                if name in renames:
                    node[key] = f"#/components/schemas/{renames[name]}"
            else:
                _rename_references(value, renames)
    elif isinstance(node, list):
        for item in node:
            _rename_references(item, renames)


@cache
def public_reference() -> dict:
    """docs/api/reference.yaml: the customer-facing text of the OpenAPI document."""
    with (settings.BASE_DIR / "docs" / "api" / "reference.yaml").open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def apply_public_reference(result, generator, request, public):
    """Give every operation, parameter, schema and field its text from the public reference.

    What drf-spectacular found in docstrings and help texts is written for engineers; the
    schema shows only what docs/api/reference.yaml says, and nothing where it says nothing
    (tests/common/test_api_reference.py fails on anything left undescribed).
    """
    reference = public_reference()
    result["info"]["description"] = reference["info"]["description"]
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    renames = reference.get("rename", {})
    for old, new in renames.items():
        if old in schemas:
            schemas[new] = schemas.pop(old)
    _rename_references(result, renames)
    operations = reference.get("operations", {})
    parameters = reference.get("parameters", {})
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            text = operations.get(f"{method.upper()} {path}", {})
            operation.pop("summary", None)
            operation.pop("description", None)
            operation.update({key: text[key] for key in ("summary", "description") if key in text})
            if text.get("examples"):
                _with_examples(operation, text["examples"])
            for parameter in operation.get("parameters", []):
                parameter.pop("description", None)
                described = parameters.get(f"{method.upper()} {path} {parameter['name']}") or (
                    parameters.get(parameter["name"])
                )
                if described:
                    parameter["description"] = described
    fields = reference.get("fields", {})
    for name, schema in schemas.items():
        text = reference.get("schemas", {}).get(name, {})
        schema.pop("description", None)
        if "description" in text:
            schema["description"] = text["description"]
        overrides = text.get("properties", {})
        for field, definition in (schema.get("properties") or {}).items():
            definition.pop("description", None)
            described = overrides.get(field) or fields.get(field)
            if described:
                definition["description"] = described
    return result
