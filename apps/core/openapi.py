"""OpenAPI post-processing: every operation documents the error responses the API can give, in the one
error shape (OpenAI's under /v1/), so clients (and the schemathesis fuzz test) know a 404 or a 429 is
part of the contract."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "a stable code, e.g. validation_error"},
                   "detail": {"description": "a message, or {field path: [messages]} for validation errors"}},
    "required": ["error", "detail"],
    "additionalProperties": True,
}
# `/v1/…` speaks OpenAI's protocol (apps.serving), errors included: what OpenAI's client libraries parse.
OPENAI_PREFIX = "/v1/"
OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "object", "required": ["message", "type", "param", "code"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"], "description": "the first bad field"},
        "code": {"type": ["string", "null"], "description": "a stable code, e.g. model_not_found"}}}},
    "required": ["error"],
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
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"], schemas["OpenAIError"] = ERROR_SCHEMA, OPENAI_ERROR_SCHEMA
    for path, path_item in result.get("paths", {}).items():
        name = "OpenAIError" if path.startswith(OPENAI_PREFIX) else "Error"
        reference = {"$ref": f"#/components/schemas/{name}"}
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description,
                                            "content": {"application/json": {"schema": reference}}})
    return result
