"""Every API field that can be null says so in the schema: drf-spectacular marks a field `nullable` only
from the serializer's `allow_null`, and a declared field (a renamed source, a username slug) does not
inherit it from the model. A client generated from a schema that lies breaks on the first null."""

import importlib
import inspect

import pytest
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from rest_framework import serializers


def _api_model_serializers():
    for config in apps.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        try:
            module = importlib.import_module(f"{config.name}.api.serializers")
        except ModuleNotFoundError:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, serializers.ModelSerializer) and cls.__module__ == module.__name__:
                yield cls


def _nullable_on_the_model(model, source: str) -> bool | None:
    """Whether any step of a dotted source can be null; None when it is not a model field path."""
    nullable = False
    for attr in source.split("."):
        try:
            field = model._meta.get_field(attr)
        except FieldDoesNotExist:
            return None
        nullable = nullable or field.null
        model = field.related_model or model
    return nullable


SERIALIZERS = sorted(_api_model_serializers(), key=lambda cls: cls.__qualname__)


def test_the_walk_finds_the_api_serializers():
    assert len(SERIALIZERS) >= 8


@pytest.mark.parametrize("serializer_class", SERIALIZERS, ids=lambda cls: cls.__qualname__)
def test_a_field_the_model_lets_be_null_is_nullable_in_the_schema(serializer_class):
    model = serializer_class.Meta.model
    liars = [name for name, field in serializer_class().fields.items()
             if field.source != "*" and _nullable_on_the_model(model, field.source) and not field.allow_null]
    assert not liars, f"{serializer_class.__qualname__}: {liars} can be null but the schema says they cannot"


def test_the_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "openapi:" in (tmp_path / "schema.yaml").read_text()
