"""OpenAPI extensions: the API-key security scheme."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "marketplace.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, as printed once when the key was created.",
        }


ERROR_SCHEMA = {
    "type": "object",
    "description": "Every API error: a stable machine `code`, a human `detail`, and for "
    "validation errors the offending `fields`.",
    "properties": {
        "code": {"type": "string", "example": "invalid"},
        "detail": {"type": "string", "example": "scopes: Unknown scope(s): admin."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["code", "detail"],
}
ERROR_RESPONSES = {
    "400": "The input is not valid; `fields` names what to fix.",
    "401": "Not signed in, or the API key is unknown, revoked or expired.",
    "403": "Signed in, but not allowed to do this (role, scope or state).",
    "404": "No such object here (objects of other organizations answer 404 too).",
    "405": "This route does not accept this method.",
    "409": "The object is not in a state that allows this change.",
    "413": "The request body is too large.",
    "415": "The request body is not JSON.",
    "429": "Too many requests; retry after the delay in `Retry-After`.",
}


def add_error_responses(result, generator, request, public):  # type: ignore[no-untyped-def]
    """drf-spectacular post-processing hook: document the shared error body on every operation,
    so clients (and the schema-driven tests) know what a failure looks like."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status_code, description in ERROR_RESPONSES.items():
                responses.setdefault(
                    status_code,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
