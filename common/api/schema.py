"""OpenAPI post-processing: every API operation documents the one error shape.

Any route under /v1 or /v2 can answer 401 (no key), 429 (rate limit) or 503 (queue or
database down) besides what its view lists, always as `{"error": {...}}`
(common.api.errors). The schema says so with a `default` response, so clients and
schema-driven tools (schemathesis in tests/security) know the shape of every error.
"""

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
