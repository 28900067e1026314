"""The request body the sweeps service accepts (apps.core.validation's rule): POST /api/tuning/jobs.

Every value the sampler could draw must make a valid config: each searched parameter is checked at its
extremes (or every choice) against the base config, so a trial can never fail on its own config."""

import math

from rest_framework import serializers

from apps.core.validation import RequestSerializer, StrictCharField, StrictIntegerField
from apps.runs.requests import TrainConfigField
from training.config import ConfigError, TrainConfig

SPACE_TYPES = ("choice", "uniform", "loguniform", "randint")
MAX_TRIALS = 500
NOT_SEARCHABLE = ("backend", "model", "model_dir", "lora")
SPACE_EXAMPLE = '{"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}'


class SweepRequestSerializer(RequestSerializer):
    name = StrictCharField(max_length=120, required=False, allow_blank=True, default="")
    dataset_id = StrictCharField(max_length=200, help_text="the dataset version the trials train on")
    base_config = TrainConfigField(help_text="the TrainConfig every trial starts from")
    search_space = serializers.DictField(help_text='{param: {"type": choice|uniform|loguniform|randint, …}}, e.g. '
                                                   + SPACE_EXAMPLE)
    metric = StrictCharField(max_length=200, default="answer_accuracy",
                             help_text="an evaluation metric (e.g. answer_accuracy) or final_loss")
    direction = serializers.ChoiceField(choices=["maximize", "minimize"], required=False,
                                        help_text="default: minimize for final_loss, else maximize")
    n_trials = StrictIntegerField(min_value=1, max_value=MAX_TRIALS,
                                  error_messages={"required": f"Required: how many trials to run (1 to {MAX_TRIALS})."})
    max_concurrent = StrictIntegerField(min_value=1, max_value=16, default=1)
    seed = StrictIntegerField(min_value=0, max_value=2**31 - 1, default=0)
    eval_set = StrictCharField(max_length=200, required=False, help_text="default: AUTO_EVAL_SET")
    eval_limit = StrictIntegerField(min_value=1, max_value=100_000, required=False)

    def validate(self, attrs):
        space = attrs["search_space"]
        if not space:
            raise serializers.ValidationError({"search_space": [f"Give at least one parameter to search, e.g. "
                                                                f"{SPACE_EXAMPLE}."]})
        problems = space_problems(space, attrs["base_config"].to_dict())
        if problems:
            raise serializers.ValidationError({"search_space": problems})
        return attrs


def space_problems(space: dict, base: dict) -> dict:
    """{parameter: [why]} for every parameter of `space` that cannot be searched from `base`."""
    fields = set(TrainConfig.__dataclass_fields__) - set(NOT_SEARCHABLE)
    problems = {}
    for name, spec in space.items():
        if name not in fields:
            problems[name] = [f"Not a TrainConfig parameter; searchable: {', '.join(sorted(fields))}."]
            continue
        problem = _spec_problem(spec)
        if problem:
            problems[name] = [problem]
            continue
        for value in _extremes(spec):
            try:
                TrainConfig.from_dict({**base, name: value})
            except ConfigError as exc:
                problems[name] = [f"{value!r} gives an invalid config: {exc}"]
                break
    return problems


def _spec_problem(spec) -> str | None:
    if not isinstance(spec, dict) or spec.get("type") not in SPACE_TYPES:
        return f"Must be an object with a type of {', '.join(SPACE_TYPES)}."
    if spec["type"] == "choice":
        values = spec.get("values")
        ok = isinstance(values, list) and values and all(isinstance(v, str | int | float | bool) for v in values)
        return None if ok else "A choice needs a non-empty list of values."
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or low >= high:
        return "Needs numbers low < high."
    if spec["type"] == "loguniform" and low <= 0:
        return "loguniform needs low > 0."
    if spec["type"] == "randint" and not all(type(v) is int for v in (low, high)):
        return "randint needs integer bounds."
    return None


def _extremes(spec: dict) -> list:
    return list(spec["values"]) if spec["type"] == "choice" else [spec["low"], spec["high"]]
