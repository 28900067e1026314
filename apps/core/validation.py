"""The one validation rule of every write endpoint: the service owns its request's DRF serializer.

A `RequestSerializer` declares a body's fields, types, bounds and messages once. The service validates
with it (`validated(...)`), so the API, the admin, tasks and commands refuse the same input with the same
field-level errors; the view hands the same class to drf-spectacular (`extend_schema(request=...)`), so
the OpenAPI document is the behaviour (apps/core/tests/test_write_schemas.py checks that they agree).
Unknown keys are refused, naming the allowed ones. What needs the database or the caller (does this
dataset exist, may this user see it) stays in the service, after the shape is known to be right.

Bodies are JSON: the strict fields below take JSON's own types only (`"5"` is not an integer, `1` is not
`true`), as the hand-written checks they replace did.
"""

from __future__ import annotations

import math

from rest_framework import serializers

from apps.core.errors import Invalid

NOT_AN_OBJECT = "The body must be a JSON object."


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictIntegerField(serializers.IntegerField):
    """An integer (not a bool, a float or a string), within the bounds, with one message naming them."""

    def __init__(self, **kwargs):
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        bounds = (f"from {low} to {high}" if low is not None and high is not None
                  else f"from {low} up" if low is not None else f"up to {high}" if high is not None else "")
        message = f"Must be an integer {bounds}.".replace("  ", " ").replace(" .", ".")
        kwargs.setdefault("error_messages", {}).update(
            {"invalid": message, "min_value": message, "max_value": message, "max_string_length": message})
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if type(data) is not int:
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictNumberField(serializers.FloatField):
    """A finite JSON number (an integer or a float, not a bool or a string)."""

    def __init__(self, **kwargs):
        low = kwargs.get("min_value")
        message = f"Must be a number >= {low}." if low is not None else "Must be a number."
        kwargs.setdefault("error_messages", {}).update({"invalid": message, "min_value": message})
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string (DRF's CharField would turn a number into one)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class RequestSerializer(serializers.Serializer):
    """A request body: an object with only the declared keys."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": [NOT_AN_OBJECT]})
        allowed = ", ".join(self.fields)
        errors = {key: [f"Unknown field; allowed: {allowed}."] for key in sorted(set(data) - set(self.fields),
                                                                                  key=str)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


def validated(serializer_class: type[serializers.Serializer], data, *, prefix: str = "", **context) -> dict:
    """The validated values of `data`, or Invalid naming every bad field (nested fields as `a.b`, list items
    as `a[3]`, under `prefix` when the body is part of a bigger one)."""
    serializer = serializer_class(data=data, context=context)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    raise Invalid(field_errors(serializer.errors, prefix))


def collect(serializer_class: type[serializers.Serializer], data, errors: dict, *, prefix: str = "",
            **context) -> dict | None:
    """Like `validated`, for a body checked part by part: the problems go into `errors` (to be raised with
    the others at once) and the values are None."""
    try:
        return validated(serializer_class, data, prefix=prefix, **context)
    except Invalid as exc:
        errors.update(exc.detail)
        return None


def field_errors(errors, prefix: str = "") -> dict:
    """DRF's nested error structure as flat `{path: [messages]}`."""
    if isinstance(errors, dict):
        flat = {}
        for key, value in errors.items():
            path = prefix if key == "non_field_errors" and prefix else f"{prefix}.{key}" if prefix else str(key)
            flat.update(field_errors(value, path))
        return flat
    if isinstance(errors, list) and errors and all(isinstance(item, dict | list) for item in errors):
        flat = {}
        for index, item in enumerate(errors):
            if item:
                flat.update(field_errors(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "non_field_errors": [str(message) for message in
                                           (errors if isinstance(errors, list) else [errors])]}


PAGINATION_PARAMETERS = ("limit", "offset")
ALWAYS_ALLOWED_PARAMETERS = ("format",)  # DRF's renderer override (`?format=json`)


def refuse_unknown_parameters(query_params, allowed) -> None:
    """Unknown query parameters are a 400 naming them, as unknown body keys are: a misspelt filter must not
    silently return everything."""
    allowed = sorted({*allowed, *ALWAYS_ALLOWED_PARAMETERS})
    unknown = sorted(set(query_params) - set(allowed))
    if unknown:
        raise Invalid({key: [f"Unknown query parameter; allowed: {', '.join(allowed)}."] for key in unknown})


class QuerySerializer(serializers.Serializer):
    """Query parameters of an endpoint: only the declared ones (and pagination's, on lists)."""

    def to_internal_value(self, data):
        refuse_unknown_parameters(data, [*self.fields, *PAGINATION_PARAMETERS])
        return super().to_internal_value(data)
