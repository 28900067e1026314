"""The request bodies the runs services accept (apps.core.validation's rule: the service validates with
these, the views document them). `TrainConfigField` is how every body that carries a TrainConfig — a
direct run, a sweep's base config, an imported run — validates it: unknown keys and impossible values
named as `config.<key>`, and a Gemma `model_dir` only as a folder inside the server's models folder."""

from django.conf import settings
from rest_framework import serializers

from apps.core.paths import folder_problem
from apps.core.validation import RequestSerializer, StrictBooleanField, StrictCharField, StrictIntegerField
from apps.datasets.models import Split
from training.config import ConfigError, TrainConfig

MAX_ATTEMPTS_LIMIT = 10
MODELS_FOLDER = "the server's models folder"


def model_dir_problem(model_dir: str) -> str | None:
    """A client may name a model folder only inside TUNIXRT_MODELS_DIR (relative to it); the message names the
    folder the client gave, never where the server keeps it."""
    return folder_problem(settings.MODELS_DIR, model_dir, what=MODELS_FOLDER)


class TrainConfigField(serializers.JSONField):
    """A TrainConfig object, validated into a `TrainConfig`."""

    default_error_messages = {"invalid": "Give a TrainConfig object (backend, model, max_steps, …)."}

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "a TrainConfig: backend, model, max_steps, batch_size, learning_rate, …")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("invalid")
        try:
            config = TrainConfig.from_dict(data)
        except ConfigError as exc:
            raise serializers.ValidationError(exc.errors) from None
        if config.model_dir is not None:
            problem = model_dir_problem(config.model_dir)
            if problem:
                raise serializers.ValidationError({"model_dir": [problem]})
        return config

    def to_representation(self, value):
        return value.to_dict() if isinstance(value, TrainConfig) else value


class RunRequestSerializer(RequestSerializer):
    """POST /api/tunix/run and the admin's start form."""

    dataset_id = StrictCharField(max_length=200, help_text="a dataset version id, e.g. dev-reasoning-v1",
                                 error_messages={"required": "Give the id of a dataset version, e.g. "
                                                             "'dev-reasoning-v1'."})
    config = TrainConfigField()
    dry_run = StrictBooleanField(default=True, help_text="true (the default): validate and report the plan only")
    split = serializers.ChoiceField(choices=Split.values, default=Split.TRAIN, help_text="the split to train on")
    max_attempts = StrictIntegerField(min_value=1, max_value=MAX_ATTEMPTS_LIMIT, default=3,
                                      help_text="how many times the reaper may start it")
    auto_evaluate = StrictBooleanField(default=True, help_text="queue an evaluation of the final checkpoint")
