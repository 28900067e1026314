"""The body of `POST /v1/chat/completions`, validated as OpenAI's API defines it, with this server's limits.

Fields an OpenAI client sends that do not change the answer (`user`, `frequency_penalty` at 0, …) are
ignored, as other compatible servers do; fields this server cannot honour (tools, logprobs) are refused
by name rather than silently dropped."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.validation import StrictBooleanField, StrictCharField, StrictIntegerField, StrictNumberField

ROLES = ("system", "developer", "user", "assistant")
MAX_MESSAGES = 200
MAX_STOP = 4
UNSUPPORTED = {"tools": "tool calls", "functions": "function calls", "tool_choice": "tool calls",
               "logprobs": "log-probabilities", "top_logprobs": "log-probabilities"}


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {
    "type": "object", "properties": {"type": {"enum": ["text"]}, "text": {"type": "string"}}}}]})
class MessageContentField(serializers.Field):
    """A string, or OpenAI's list of content parts of which only `text` parts are readable here."""

    # DRF formats the message with str.format, so literal braces are doubled.
    default_error_messages = {"invalid": "Must be a string or a list of {{\"type\": \"text\", \"text\": …}} parts."}

    def to_internal_value(self, data):
        if isinstance(data, str):
            return data
        if isinstance(data, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                          and isinstance(p.get("text"), str) for p in data):
            return "".join(part["text"] for part in data)
        self.fail("invalid")

    def to_representation(self, value):
        return value


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = MessageContentField()

    def validate_role(self, value):
        return "system" if value == "developer" else value  # the newer name of the same role


@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"},
                                                      "maxItems": MAX_STOP}]})
class StopField(serializers.Field):
    default_error_messages = {"invalid": f"Must be a non-empty string or a list of at most {MAX_STOP} of them."}

    def to_internal_value(self, data):
        stops = [data] if isinstance(data, str) else data
        if not isinstance(stops, list) or len(stops) > MAX_STOP or not all(isinstance(s, str) and s for s in stops):
            self.fail("invalid")
        return stops

    def to_representation(self, value):
        return value


class ChatCompletionRequestSerializer(serializers.Serializer):
    model = StrictCharField(max_length=200)
    messages = MessageSerializer(many=True, allow_empty=False, max_length=MAX_MESSAGES)
    max_tokens = StrictIntegerField(min_value=1, required=False, allow_null=True)
    max_completion_tokens = StrictIntegerField(min_value=1, required=False, allow_null=True)
    temperature = StrictNumberField(min_value=0.0, max_value=2.0, required=False, allow_null=True)
    top_p = StrictNumberField(min_value=0.0, max_value=1.0, required=False, allow_null=True)
    seed = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False, allow_null=True)
    stop = StopField(required=False, allow_null=True)
    n = StrictIntegerField(min_value=1, required=False, allow_null=True)
    stream = StrictBooleanField(required=False, default=False)

    def validate_top_p(self, value):
        if value is not None and value <= 0:
            raise serializers.ValidationError("Must be a number above 0 and at most 1.")
        return value

    def validate_n(self, value):
        if value is not None and value > settings.SERVING_MAX_N:
            raise serializers.ValidationError(f"At most {settings.SERVING_MAX_N} completions per request.")
        return value

    def validate(self, attrs):
        refused = {key: [f"This server does not support {what}."] for key, what in UNSUPPORTED.items()
                   if self.initial_data.get(key) not in (None, False, [], 0)}
        if refused:
            raise serializers.ValidationError(refused)
        return attrs
