"""Which model version a request names, and what `/v1/models` lists (the caller's visibility applies).

A model is named as OpenAI clients name one, by a single string: `reasoner:v3` (a version label),
`reasoner@candidate` (an alias), or `reasoner` alone (its `champion`).
"""

from __future__ import annotations

from apps.core.errors import NotFound
from apps.registry.models import ModelAlias, ModelVersion
from apps.registry.selectors import model_get, models_visible_to

DEFAULT_ALIAS = "champion"


def version_ref(version: ModelVersion) -> str:
    return f"{version.model.name}:{version.label}"


def served_version_get(*, user, ref) -> ModelVersion:
    if not isinstance(ref, str) or not ref:
        raise NotFound("Name a model: reasoner:v3, reasoner@champion or reasoner.")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return _by_alias(user, name, alias, ref)
    if ":" in ref:
        name, label = ref.split(":", 1)
        version = (ModelVersion.objects.select_related("model")
                   .filter(model=model_get(user=user, model_ref=name), label=label).first())
        if version is None:
            raise NotFound(f"The model {name!r} has no version {label!r}.")
        return version
    return _by_alias(user, ref, DEFAULT_ALIAS, ref)


def _by_alias(user, name: str, alias: str, ref: str) -> ModelVersion:
    model = model_get(user=user, model_ref=name)
    pointer = ModelAlias.objects.select_related("version__model").filter(model=model, name=alias).first()
    if pointer is None:
        hint = f" Name a version ({model.name}:v1) or another alias." if "@" not in ref else ""
        raise NotFound(f"The model {model.name!r} has no alias {alias!r}.{hint}")
    return pointer.version


def served_models(user) -> list[dict]:
    """Every version and alias the caller may use, as OpenAI's model objects."""
    models = models_visible_to(user)
    versions = ModelVersion.objects.filter(model__in=models).select_related("model").order_by("model__name", "number")
    aliases = ModelAlias.objects.filter(model__in=models).select_related("model", "version").order_by("model__name",
                                                                                                      "name")
    entries = [(version_ref(v), v.created_at, v.backend) for v in versions]
    entries += [(f"{a.model.name}@{a.name}", a.updated_at, a.version.backend) for a in aliases]
    return [{"id": ref, "object": "model", "created": int(at.timestamp()), "owned_by": "tunix-rt",
             "backend": backend} for ref, at, backend in entries]
