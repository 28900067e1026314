"""The request bodies the registry services accept (apps.core.validation's rule): create a model, promote a
run (or a sweep's best trial) to a version, move an alias, evaluate a version."""

import re

from rest_framework import serializers

from apps.core.lookups import as_uuid
from apps.core.validation import RequestSerializer, StrictBooleanField, StrictCharField
from apps.evaluations.requests import EvaluateRequestSerializer
from apps.registry.models import NAME_RE

LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_MESSAGE = "Use 1-120 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit."
LABEL_MESSAGE = "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit."


def _matching(pattern: re.Pattern, message: str, **kwargs) -> StrictCharField:
    """A string matching `pattern` whole, with one message for every way of missing it."""
    def validate(value):
        if not pattern.fullmatch(value):
            raise serializers.ValidationError(message)

    return StrictCharField(validators=[validate], trim_whitespace=False, **kwargs,
                           error_messages={"invalid": message, "blank": message})


class ModelRequestSerializer(RequestSerializer):
    """POST /api/models."""

    name = _matching(NAME_RE, NAME_MESSAGE, help_text="e.g. reasoner")
    description = StrictCharField(max_length=5000, required=False, allow_blank=True, default="",
                                  trim_whitespace=False,
                                  error_messages={"max_length": "Must be text of at most 5,000 characters."})


class PromoteRequestSerializer(RequestSerializer):
    """POST /api/models/{id}/versions/promote."""

    run_id = StrictCharField(max_length=64, help_text="a completed training run",
                             error_messages={"required": "Give the id (a UUID) of a completed training run."})
    label = _matching(LABEL_RE, LABEL_MESSAGE, required=False, help_text="default: v1, v2, … in promotion order")

    def validate_run_id(self, value):
        if not as_uuid(value):
            raise serializers.ValidationError("Give the id (a UUID) of a completed training run.")
        return value


class SweepPromoteRequestSerializer(RequestSerializer):
    """POST /api/tuning/jobs/{id}/promote: the sweep's best trial's run, as a version of `model`."""

    model = StrictCharField(max_length=120, help_text="a registered model's name", error_messages={
        "required": "Give the name of a registered model (create it with POST /api/models)."})
    label = _matching(LABEL_RE, LABEL_MESSAGE, required=False)


class AliasRequestSerializer(RequestSerializer):
    """PUT /api/models/{id}/aliases/{alias}."""

    version = StrictCharField(max_length=64, help_text="the version's label, e.g. v3")
    force = StrictBooleanField(default=False, help_text="superusers only, with a reason")
    reason = StrictCharField(max_length=2000, required=False, allow_blank=True, default="", trim_whitespace=False,
                             error_messages={"max_length": "Must be text of at most 2,000 characters."})

    def validate(self, attrs):
        if attrs["force"] and not attrs["reason"].strip():
            raise serializers.ValidationError({"reason": ["A forced move needs a written reason."]})
        return attrs


class VersionEvaluateRequestSerializer(EvaluateRequestSerializer):
    """POST /api/models/versions/{id}/evaluate: a run's evaluation without a checkpoint to choose (a version is
    the checkpoint it copied)."""

    checkpoint_step = None
