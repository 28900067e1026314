"""OpenAPI post-processing: every operation documents the error responses the API can give, in the one
error shape, so clients (and the schemathesis fuzz test) know a 404 or a 429 is part of the contract."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "a stable code, e.g. validation_error"},
                   "detail": {"description": "a message, or {field path: [messages]} for validation errors"}},
    "required": ["error", "detail"],
    "additionalProperties": True,
}
ERRORS = {
    "400": "Invalid input; `detail` names every bad field.",
    "401": "No credentials, or an invalid, expired or revoked API key.",
    "403": "A read-only key on a write, or a missing permission.",
    "404": "Unknown, or outside the caller's reach.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflicts with the current state (e.g. an immutable version, a finished run).",
    "411": "A chunked body without Content-Length.",
    "413": "The body exceeds its limit.",
    "415": "Unsupported media type.",
    "429": "Too many writes with this API key; see Retry-After.",
    "503": "A dependency (database, broker) is unavailable.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description,
                                            "content": {"application/json": {"schema": reference}}})
    return result
