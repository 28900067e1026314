"""Request bodies of the datasets endpoints other than the build (apps/datasets/spec.py), under
apps.core.validation's rule: an export or manifest of the Tunix SFT format, and UNGAR generation."""

from rest_framework import serializers

from apps.core.validation import RequestSerializer, StrictBooleanField, StrictCharField, StrictIntegerField
from apps.datasets.models import Split
from apps.datasets.spec import MAX_SEED

MAX_GENERATE = 1000


class SftExportRequestSerializer(RequestSerializer):
    dataset_id = StrictCharField(max_length=200)
    split = serializers.ChoiceField(choices=Split.values, required=False)


class SftManifestRequestSerializer(RequestSerializer):
    dataset_id = StrictCharField(max_length=200)
    split = serializers.ChoiceField(choices=Split.values, required=False, default="train")
    config = serializers.DictField(required=False, default=dict, help_text="a TrainConfig (checked by the view)")


class UngarGenerateRequestSerializer(RequestSerializer):
    count = StrictIntegerField(min_value=1, max_value=MAX_GENERATE, default=100)
    seed = StrictIntegerField(min_value=0, max_value=MAX_SEED, default=0)
    persist = StrictBooleanField(default=True)
    approve = StrictBooleanField(default=False, help_text="Approve the stored traces (needs review_trace).")
