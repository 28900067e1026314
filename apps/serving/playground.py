"""The admin playground on a model version's page: ask the version a question through the same path as
`/v1/chat/completions` (the model host, the version's stored weights), see its reasoning and answer
rendered, the judges' verdicts when an expected answer is given, and how long it took."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator
from django.template.response import TemplateResponse

from apps.core.errors import DomainError
from apps.registry.models import ModelVersion
from apps.serving.services import complete, context_length
from training import judges
from training.evaluate import judge


class PlaygroundForm(forms.Form):
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 90}), max_length=20_000)
    expected_answer = forms.CharField(required=False, max_length=2_000,
                                      help_text="optional: the judges grade the output against it")
    max_tokens = forms.IntegerField(min_value=1, initial=128)
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=0.0)
    seed = forms.IntegerField(min_value=0, max_value=2**31 - 1, initial=0)

    def __init__(self, *args, version: ModelVersion, **kwargs):
        super().__init__(*args, **kwargs)
        limit = context_length(version)
        if limit:
            self.fields["max_tokens"].max_value = limit
            self.fields["max_tokens"].validators.append(MaxValueValidator(limit))
            self.fields["max_tokens"].initial = min(128, limit)
            self.fields["max_tokens"].help_text = f"at most {limit}, the model's context"


def _answer(version: ModelVersion, data: dict) -> dict:
    completion = complete(version, {"messages": [{"role": "user", "content": data["prompt"]}],
                                    "max_tokens": data["max_tokens"], "temperature": data["temperature"],
                                    "seed": data["seed"]})
    output = completion["choices"][0]["message"]["content"]
    timing, usage = completion["timing"], completion["usage"]
    seconds = timing["generate_seconds"] or timing["seconds"]
    result = {"output": output, "reasoning": judges.extract_reasoning(output),
              "answer": judges.extract_answer(output), "format_ok": judges.format_ok(output),
              "finish_reason": completion["choices"][0]["finish_reason"], "usage": usage, "timing": timing,
              "tokens_per_s": usage["completion_tokens"] / seconds if seconds else None}
    if data.get("expected_answer"):
        result["verdicts"] = judge({"expected_answer": data["expected_answer"]}, output)
    return result


def playground_view(request, version: ModelVersion, context: dict) -> TemplateResponse:
    form = PlaygroundForm(request.POST or None, version=version)
    result = error = None
    if request.method == "POST" and form.is_valid():
        try:
            result = _answer(version, form.cleaned_data)
        except DomainError as exc:  # the model host is down, the prompt is too long: say so on the page
            error = exc.message
    return TemplateResponse(request, "admin/registry/modelversion/playground.html",
                            {**context, "form": form, "result": result, "error": error, "version": version})
