"""Chat completions for registered model versions, answered by the model host (SPEC §6, OpenAI's protocol).

What a caller can make the server claim is bounded here: the model named must be a version the caller
can see; the answer always names the exact version that produced it (`model` is `name:label` even when
an alias was asked for, `system_fingerprint` carries the version's id), so a verdict recorded from it can
be traced to weights; usage counts are the model's own token counts.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator

from django.conf import settings

from apps.core.errors import Invalid, Unavailable
from apps.core.metrics import SERVED_BATCH, SERVED_COMPLETIONS, SERVED_TOKENS
from apps.core.validation import validated
from apps.registry.integrity import version_base_weights_check
from apps.registry.models import ModelVersion
from apps.serving.host import model_host
from apps.serving.requests import ChatCompletionRequestSerializer
from apps.serving.selectors import served_version_get, version_ref
from apps.serving.storage import version_folder
from training.render import render_conversation

# Host errors that are the request's fault (400); anything else is the server's (503).
CLIENT_ERRORS = {"context_length_exceeded": "messages"}


def context_length(version: ModelVersion) -> int:
    """The context the version was trained with; a GRPO run's is its parent's (recorded in init_from)."""
    length = (version.config or {}).get("max_seq_len") or version.source_run.init_from.get("max_seq_len")
    return int(length or 0)


def chat_completion_create(*, user, data) -> dict:
    values = validated(ChatCompletionRequestSerializer, data)
    version = served_version_get(user=user, ref=values["model"])
    return complete(version, values)


def complete(version: ModelVersion, values: dict) -> dict:
    """One chat completion of `version` for already validated `values` (the admin playground calls this)."""
    limit = context_length(version)
    max_tokens = values.get("max_completion_tokens") or values.get("max_tokens") or limit
    if limit and max_tokens > limit:
        field = "max_completion_tokens" if values.get("max_completion_tokens") else "max_tokens"
        raise Invalid({field: [f"At most {limit}: this model's context is {limit} tokens."]},
                      code="context_length_exceeded")
    try:
        prompt = render_conversation(values["messages"])
    except ValueError as exc:
        raise Invalid({"messages": [str(exc)]}) from None
    version_base_weights_check(version, for_download=True)  # a LoRA version answers only over its own base
    temperature = 1.0 if values.get("temperature") is None else values["temperature"]
    seed = values["seed"] if values.get("seed") is not None else secrets.randbelow(2**31)
    request = {"folder": str(version_folder(version)), "backend": version.backend, "prompt": prompt,
               "n": values.get("n") or 1, "max_tokens": max_tokens, "temperature": temperature,
               "top_p": values.get("top_p") or 1.0, "seed": seed, "models_dir": str(settings.MODELS_DIR)}
    began = time.perf_counter()
    try:
        reply = model_host().call(request)
    except Unavailable:
        SERVED_COMPLETIONS.labels("unavailable").inc()
        raise
    if not reply.get("ok"):
        SERVED_COMPLETIONS.labels(reply.get("error", "generation_failed")).inc()
        _raise_host_error(reply)
    completion = _completion(version, reply, values.get("stop") or [], time.perf_counter() - began)
    SERVED_COMPLETIONS.labels("ok").inc()
    SERVED_TOKENS.labels("prompt").inc(completion["usage"]["prompt_tokens"])
    SERVED_TOKENS.labels("completion").inc(completion["usage"]["completion_tokens"])
    SERVED_BATCH.observe(reply.get("batch_size") or 1)
    return completion


def _raise_host_error(reply: dict):
    code = reply.get("error", "generation_failed")
    if code in CLIENT_ERRORS:
        raise Invalid({CLIENT_ERRORS[code]: [reply.get("message", code)]}, code=code)
    raise Unavailable(f"The model could not answer: {reply.get('message', code)}", code=code)


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    cuts = [text.index(stop) for stop in stops if stop in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _completion(version: ModelVersion, reply: dict, stops: list[str], seconds: float) -> dict:
    choices, completion_tokens = [], 0
    for index, choice in enumerate(reply["choices"]):
        text, cut = _cut_at_stop(choice["text"], stops)
        completion_tokens += choice["tokens"]
        choices.append({"index": index, "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop" if cut or choice["stopped"] is not False else "length",
                        "logprobs": None})
    prompt_tokens = int(reply.get("prompt_tokens") or 0)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": version_ref(version), "system_fingerprint": f"tunixrt-{version.pk}", "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        # Not in OpenAI's schema (clients ignore it): how the server spent the time.
        "timing": {"seconds": round(seconds, 6), "generate_seconds": round(reply.get("generate_seconds") or 0, 6),
                   "load_seconds": reply.get("load_seconds"), "batch_size": reply.get("batch_size")},
    }


def completion_chunks(completion: dict) -> Iterator[dict]:
    """The completion as OpenAI's stream of `chat.completion.chunk` objects: per choice a role chunk, its
    content, and its finish reason, then one chunk with the usage. The model decodes in one compiled loop,
    so the chunks follow the whole generation; they do not arrive token by token."""
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": completion["created"],
            "model": completion["model"], "system_fingerprint": completion["system_fingerprint"]}
    for choice in completion["choices"]:
        index = choice["index"]
        yield {**base, "choices": [{"index": index, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}
        yield {**base, "choices": [{"index": index, "delta": {"content": choice["message"]["content"]},
                                    "finish_reason": None}]}
        yield {**base, "choices": [{"index": index, "delta": {}, "finish_reason": choice["finish_reason"]}]}
    yield {**base, "choices": [], "usage": completion["usage"]}
