"""The request bodies the runs services accept (apps.core.validation's rule: the service validates with
these, the views document them). `TrainConfigField` is how every body that carries a TrainConfig — a
direct run, a sweep's base config, an imported run — validates it: unknown keys and impossible values
named as `config.<key>`, and a Gemma `model_dir` only as a folder inside the server's models folder.

A run request's `config` is a TrainConfig for `algorithm` sft and a GRPOConfig (training.grpo.config) for grpo, whose
reward spec comes as its own field, `reward`; `init_from` names the weights a run starts from."""

from django.conf import settings
from rest_framework import serializers

from apps.core.paths import folder_problem
from apps.core.validation import (
    RequestSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    field_errors,
)
from apps.datasets.models import Split
from apps.runs.models import Algorithm
from training.config import ConfigError, TrainConfig
from training.grpo.config import GRPOConfig

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


class InitFromSerializer(RequestSerializer):
    """Where a run's weights come from: a model version, or a completed run and one of its checkpoints."""

    version = StrictCharField(required=False, max_length=64, help_text="a model version id")
    run = StrictCharField(required=False, max_length=64, help_text="a completed training run's id")
    step = StrictIntegerField(required=False, min_value=1,
                              help_text="with run: the checkpoint step (default: the run's latest checkpoint)")

    def validate(self, attrs):
        if ("version" in attrs) == ("run" in attrs):
            raise serializers.ValidationError({"non_field_errors": [
                "Give either version (a model version id) or run (a training run id, with an optional step)."]})
        if "step" in attrs and "version" in attrs:
            raise serializers.ValidationError({"step": ["A version names its own checkpoint; give step only "
                                                        "with run."]})
        return attrs


def run_config_errors(algorithm: str, config, reward) -> dict | TrainConfig | GRPOConfig:
    """The config of a run request for its algorithm, or the errors naming each bad key."""
    if not isinstance(config, dict):
        return {"config": ["Give a config object (a TrainConfig for sft, a GRPO config for grpo)."]}
    if algorithm == Algorithm.GRPO:
        if reward is not None and "reward" in config:
            return {"reward": ["Give the reward spec once: as the reward field, not inside config too."]}
        data = {**config, "reward": reward} if reward is not None else config
        try:
            return GRPOConfig.from_dict(data)
        except ConfigError as exc:
            return {(key if key.startswith("reward") else f"config.{key}"): messages
                    for key, messages in exc.errors.items()}
    if reward is not None:
        return {"reward": ["Only a grpo run takes a reward spec; an sft run learns from the traces."]}
    try:
        return TrainConfigField().to_internal_value(config)
    except serializers.ValidationError as exc:
        return field_errors(exc.detail, "config")


class RunRequestSerializer(RequestSerializer):
    """POST /api/tunix/run and the admin's start form."""

    dataset_id = StrictCharField(max_length=200, help_text="a dataset version id, e.g. dev-reasoning-v1",
                                 error_messages={"required": "Give the id of a dataset version, e.g. "
                                                             "'dev-reasoning-v1'."})
    config = serializers.JSONField(help_text="a TrainConfig (backend, model, max_steps, …) for sft; for grpo a GRPO "
                                             "config (max_steps, prompts_per_step, group_size, max_new_tokens, "
                                             "temperature, top_p, learning_rate, beta, epsilon, …)")
    algorithm = serializers.ChoiceField(choices=Algorithm.choices, default=Algorithm.SFT,
                                        help_text="sft (learn the traces) or grpo (reinforce what the judges reward)")
    init_from = InitFromSerializer(required=False, help_text="start from these weights (required for grpo)")
    reward = serializers.JSONField(required=False, help_text='grpo: {"judges": {name: weight}} over answer_exact, '
                                                             'format and reasoning_checks (default answer_exact 1)')
    dry_run = StrictBooleanField(default=True, help_text="true (the default): validate and report the plan only")
    split = serializers.ChoiceField(choices=Split.values, default=Split.TRAIN, help_text="the split to train on")
    max_attempts = StrictIntegerField(min_value=1, max_value=MAX_ATTEMPTS_LIMIT, default=3,
                                      help_text="how many times the reaper may start it")
    auto_evaluate = StrictBooleanField(default=True, help_text="queue an evaluation of the final checkpoint")

    def validate(self, attrs):
        config = run_config_errors(attrs["algorithm"], attrs["config"], attrs.get("reward"))
        if isinstance(config, dict):
            raise serializers.ValidationError(config)
        if attrs["algorithm"] == Algorithm.GRPO and "init_from" not in attrs:
            raise serializers.ValidationError({"init_from": [
                "A grpo run starts from trained weights: give a model version or a completed run."]})
        return {**attrs, "config": config}
