"""The request bodies the evaluations services accept (apps.core.validation's rule): evaluate a run, create
a regression baseline, check an evaluation against one. Which eval set, evaluation or run an id names, and
whether the caller may see it, is the service's to decide once the shape is right."""

from rest_framework import serializers

from apps.core.validation import (
    RequestSerializer,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
    StrictNumberField,
)

MAX_NEW_TOKENS_LIMIT = 4096
BATCH_SIZE_LIMIT = 256
DECISIONS = ("point", "paired_ci")


class EvaluateRequestSerializer(RequestSerializer):
    """POST /api/tunix/runs/{id}/evaluate (and a version's evaluate, and a run's automatic evaluation)."""

    eval_set = StrictCharField(max_length=200, help_text="a loaded eval set, e.g. eval-v1", error_messages={
        "required": "Give the id of a loaded eval set, e.g. 'eval-v1'.",
        "blank": "Give the id of a loaded eval set, e.g. 'eval-v1'."})
    section = StrictCharField(max_length=64, required=False, allow_blank=True, allow_null=True,
                              help_text="only items of this section")
    limit = StrictIntegerField(min_value=1, required=False, allow_null=True, help_text="only the first N items")
    judges = serializers.ListField(child=StrictCharField(), required=False, allow_null=True,
                                   help_text="answer_exact and format always run; add reasoning_checks, llm_judge")
    checkpoint_step = StrictIntegerField(min_value=1, required=False, allow_null=True,
                                         help_text="default: the latest")
    max_new_tokens = StrictIntegerField(min_value=1, max_value=MAX_NEW_TOKENS_LIMIT, required=False, allow_null=True)
    batch_size = StrictIntegerField(min_value=1, max_value=BATCH_SIZE_LIMIT, required=False, allow_null=True)


NAME_MESSAGE = "Give a name of 1 to 120 characters."


class BaselineRequestSerializer(RequestSerializer):
    """POST /api/regression/baselines."""

    name = StrictCharField(max_length=120, trim_whitespace=False, error_messages={
        "required": NAME_MESSAGE, "blank": NAME_MESSAGE, "max_length": NAME_MESSAGE, "invalid": NAME_MESSAGE})
    metric = StrictCharField(max_length=200, default="answer_accuracy",
                             help_text="a metrics key, e.g. answer_accuracy or by_category.arithmetic.answer_accuracy")
    evaluation_id = StrictCharField(max_length=64, help_text="a completed evaluation's id", error_messages={
        "required": "Give the id of a completed evaluation."})
    lower_is_better = StrictBooleanField(default=False)
    tolerance = StrictNumberField(min_value=0, default=0.0)
    tolerance_mode = serializers.ChoiceField(choices=["absolute", "relative"], default="absolute",
                                             error_messages={"invalid_choice": "Must be 'absolute' or 'relative'."})
    decision = serializers.ChoiceField(choices=DECISIONS, default="point", help_text=(
        "point: the point values decide; paired_ci: pass only when the paired 95 % interval's worse end is "
        "within the tolerance"), error_messages={"invalid_choice": "Must be 'point' or 'paired_ci'."})

    def validate_name(self, value):
        if not value.strip():
            raise serializers.ValidationError(NAME_MESSAGE)
        return value


class CheckRequestSerializer(RequestSerializer):
    """POST /api/regression/check: an evaluation, or a run's latest evaluation comparable with the baseline's."""

    baseline = StrictCharField(max_length=120, help_text="the baseline's name",
                               error_messages={"required": "Give the baseline's name."})
    evaluation_id = StrictCharField(max_length=64, required=False)
    run_id = StrictCharField(max_length=64, required=False,
                             help_text="instead of evaluation_id: the run's latest evaluation comparable with the "
                                       "baseline's")

    def validate(self, attrs):
        if ("evaluation_id" in attrs) == ("run_id" in attrs):
            raise serializers.ValidationError({"evaluation_id": ["Give exactly one of evaluation_id or run_id."]})
        return attrs
