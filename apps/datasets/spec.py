"""The build request (SPEC §3): validation and its normalised form, `BuildSpec`.

The API, the admin action and `manage.py seed_datasets` all build through `parse_build_request`, so
a request means the same thing, and is refused with the same field-level errors, everywhere.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from rest_framework import serializers

from apps.core.errors import Invalid
from apps.core.validation import RequestSerializer
from apps.traces.models import TraceStatus
from training.trace_schema import canonical_json

MAX_LIMIT = 100_000
MAX_SEED = 2**63 - 1
MAX_PROVENANCE_BYTES = 16 * 1024
STRATEGIES = ("latest", "random", "all", "stratified")
DEFAULT_SPLIT = {"train": 1.0, "val": 0.0, "test": 0.0}
FILTER_KEYS = ("status", "source", "category", "tags", "meta", "created_after", "created_before", "ids")

# Lowercase words joined by single '-' or '_'; versions use '.' or '_' but never '-', so the id
# `{name}-{version}` always splits at its last '-' and is safe as a directory name.
NAME_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
VERSION_RE = re.compile(r"^[A-Za-z0-9]+(?:[._][A-Za-z0-9]+)*$")
DATASET_ID_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*-[A-Za-z0-9]+(?:[._][A-Za-z0-9]+)*$")
# Meta keys become JSON path lookups; '__' would be read by Django as a nested path.
META_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class BuildSpec:
    name: str
    version: str
    filters: dict = field(default_factory=dict)
    strategy: str = "all"
    seed: int | None = None
    stratify_by: str | None = None
    limit: int | None = None
    split: dict = field(default_factory=lambda: dict(DEFAULT_SPLIT))
    session_id: str = ""
    parent_dataset_id: str | None = None
    provenance: dict = field(default_factory=dict)

    @property
    def dataset_id(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def split_seed(self) -> int:
        return self.seed or 0

    def selection(self) -> dict:
        return {"strategy": self.strategy, "seed": self.seed, "limit": self.limit, "stratify_by": self.stratify_by}

    def as_request(self) -> dict:
        """The build request this spec is the normal form of; `parse_build_request` gives it back."""
        return {"dataset_name": self.name, "dataset_version": self.version, "filters": self.filters,
                "selection_strategy": self.strategy, "seed": self.seed, "stratify_by": self.stratify_by,
                "limit": self.limit, "split": self.split, "session_id": self.session_id,
                "parent_dataset_id": self.parent_dataset_id, "provenance": self.provenance}


def _meta_key_ok(key) -> bool:
    return isinstance(key, str) and bool(META_KEY_RE.match(key)) and "__" not in key


class SplitSerializer(serializers.Serializer):
    train = serializers.FloatField(min_value=0, max_value=1)
    val = serializers.FloatField(min_value=0, max_value=1, default=0.0)
    test = serializers.FloatField(min_value=0, max_value=1, default=0.0)

    def to_internal_value(self, data):
        unknown = sorted(set(data) - {"train", "val", "test"}, key=str) if isinstance(data, dict) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown split; use train, val and test."] for key in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs):
        total = attrs["train"] + attrs["val"] + attrs["test"]
        if abs(total - 1.0) > 1e-9:
            raise serializers.ValidationError(f"train + val + test must add up to 1 (got {total:g}).")
        return attrs


class BuildRequestSerializer(RequestSerializer):
    dataset_name = serializers.RegexField(NAME_RE, max_length=120, error_messages={
        "invalid": "Use lowercase letters and digits joined by single '-' or '_' (e.g. 'dev-reasoning')."})
    dataset_version = serializers.RegexField(VERSION_RE, max_length=64, error_messages={
        "invalid": "Use letters and digits joined by '.' or '_', no '-' (e.g. 'v1' or '2024.06')."})
    filters = serializers.JSONField(required=False, default=dict)
    selection_strategy = serializers.ChoiceField(choices=STRATEGIES, default="all")
    seed = serializers.IntegerField(min_value=0, max_value=MAX_SEED, required=False, allow_null=True, default=None)
    stratify_by = serializers.CharField(max_length=64, required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False, allow_null=True, default=None)
    split = SplitSerializer(required=False)
    session_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    parent_dataset_id = serializers.CharField(max_length=200, required=False, allow_null=True, default=None)
    provenance = serializers.JSONField(required=False, default=dict)

    def validate_provenance(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        if len(canonical_json(value).encode("utf-8")) > MAX_PROVENANCE_BYTES:
            raise serializers.ValidationError(f"Must be at most {MAX_PROVENANCE_BYTES} bytes as JSON.")
        return value

    def validate_stratify_by(self, value):
        if value is not None and not _meta_key_ok(value):
            raise serializers.ValidationError("Must be a meta key: letters, digits, '_', '.', '-' (no '__').")
        return value

    def validate(self, attrs):
        errors = {}
        strategy = attrs["selection_strategy"]
        if strategy == "random" and attrs["seed"] is None:
            errors["seed"] = ["selection_strategy 'random' needs a seed (an integer >= 0)."]
        if strategy == "stratified" and not attrs["stratify_by"]:
            errors["stratify_by"] = ["selection_strategy 'stratified' needs stratify_by, a meta key."]
        if strategy != "stratified" and attrs["stratify_by"]:
            errors["stratify_by"] = ["Only the 'stratified' strategy uses stratify_by."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def _unknown_keys(data: dict, allowed: tuple, prefix: str = "") -> dict:
    return {f"{prefix}{key}": ["Unknown field; allowed: " + ", ".join(allowed) + "."]
            for key in sorted(set(data) - set(allowed), key=str)}


def parse_build_request(data) -> BuildSpec:
    """Validate a build request body; Invalid (400) names every bad field."""
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": ["A build request must be a JSON object."]})
    errors: dict = {}
    body = BuildRequestSerializer(data=data)
    if not body.is_valid():
        errors.update({key: _messages(value) for key, value in body.errors.items()})
    filters, filter_errors = clean_filters(data.get("filters", {}))
    errors.update(filter_errors)
    if errors:
        raise Invalid(errors)
    v = body.validated_data
    return BuildSpec(
        name=v["dataset_name"], version=v["dataset_version"], filters=filters, strategy=v["selection_strategy"],
        seed=v["seed"], stratify_by=v["stratify_by"], limit=v["limit"],
        split=dict(v.get("split") or DEFAULT_SPLIT), session_id=v["session_id"],
        parent_dataset_id=v["parent_dataset_id"], provenance=v["provenance"],
    )


def _messages(value) -> list:
    if isinstance(value, dict):
        return [f"{key}: {' '.join(str(m) for m in _messages(msgs))}" for key, msgs in value.items()]
    return [str(m) for m in value] if isinstance(value, list) else [str(value)]


def clean_filters(raw) -> tuple[dict, dict]:
    """Normalised filters (status defaults to approved) and errors keyed `filters.<key>`."""
    if not isinstance(raw, dict):
        return {}, {"filters": ["Must be a JSON object."]}
    errors = _unknown_keys(raw, FILTER_KEYS, prefix="filters.")
    clean = {"status": _clean_status(raw.get("status", TraceStatus.APPROVED), errors)}
    for key in ("source", "category"):
        if key in raw:
            clean[key] = _clean_text(key, raw[key], errors)
    if "tags" in raw:
        clean["tags"] = _clean_tags(raw["tags"], errors)
    if "meta" in raw:
        clean["meta"] = _clean_meta(raw["meta"], errors)
    for key in ("created_after", "created_before"):
        if raw.get(key) is not None:
            clean[key] = _clean_datetime(key, raw[key], errors)
    if "ids" in raw:
        clean["ids"] = _clean_ids(raw["ids"], errors)
    return clean, errors


def _clean_status(value, errors):
    allowed = list(TraceStatus.values)
    if value == "any":
        return "any"
    values = value if isinstance(value, list) else [value]
    if not values or any(v not in allowed for v in values):
        errors["filters.status"] = [f"Must be one of {', '.join(allowed)}, a list of them, or 'any' (got {value!r})."]
        return value
    return values[0] if len(values) == 1 else sorted(set(values))


def _clean_text(key, value, errors):
    if not isinstance(value, str) or not value or len(value) > 200:
        errors[f"filters.{key}"] = ["Must be a non-empty string of at most 200 characters."]
    return value


def _clean_tags(value, errors):
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t for t in tags):
        errors["filters.tags"] = ["Must be a tag or a non-empty list of tags (every one must be present)."]
        return value
    return sorted(set(tags))


def _clean_meta(value, errors):
    if not isinstance(value, dict) or not value:
        errors["filters.meta"] = ["Must be a non-empty object of meta key -> value (equality)."]
        return value
    for key, item in value.items():
        if not _meta_key_ok(key):
            errors[f"filters.meta.{key}"] = ["Not a usable meta key: letters, digits, '_', '.', '-' (no '__')."]
        elif item is not None and not isinstance(item, (str, int, float, bool)):
            errors[f"filters.meta.{key}"] = ["Must be a string, number, boolean or null (equality only)."]
    return dict(sorted(value.items()))


def _clean_datetime(key, value, errors):
    field_ = serializers.DateTimeField()
    try:
        return field_.to_representation(field_.to_internal_value(value))
    except serializers.ValidationError as exc:
        errors[f"filters.{key}"] = [str(m) for m in exc.detail]
        return value


def _clean_ids(value, errors):
    if not isinstance(value, list) or not value or len(value) > MAX_LIMIT:
        errors["filters.ids"] = [f"Must be a list of 1 to {MAX_LIMIT} trace ids."]
        return value
    try:
        return [str(uuid.UUID(str(v))) for v in value]
    except ValueError:
        errors["filters.ids"] = ["Every id must be a trace UUID."]
        return value
