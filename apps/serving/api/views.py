"""`/v1/chat/completions` and `/v1/models`: OpenAI's protocol, so any OpenAI client library can call a
registered model unchanged. Errors use OpenAI's shape `{"error": {"message", "type", "param", "code"}}`
(what those clients parse) instead of the `/api` one; the status codes are the same.

Asking a model writes nothing, so a read-scoped key may call it; a session still needs its CSRF token.
"""

from __future__ import annotations

import json

from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.error_handler import api_exception_handler
from apps.serving import selectors, services
from apps.serving.requests import ChatCompletionRequestSerializer

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
          429: "rate_limit_error"}
_CODES = {"not_found": "model_not_found", "authentication_failed": "invalid_api_key",
          "not_authenticated": "invalid_api_key", "throttled": "rate_limit_exceeded"}


def openai_error(response: Response) -> Response:
    """This API's error body rewritten in OpenAI's shape, naming the first bad field as `param`."""
    body = response.data if isinstance(response.data, dict) else {}
    detail, code = body.get("detail"), body.get("error", "error")
    param = None
    if isinstance(detail, dict) and detail:
        param = next(iter(detail))
        message = "; ".join(f"{key}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                            for key, v in detail.items())
    else:
        message = str(detail or code)
    response.data = {"error": {"message": message, "type": _TYPES.get(response.status_code, "server_error"),
                               "param": param, "code": _CODES.get(code, code)}}
    return response


class OpenAIView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    def get_exception_handler(self):
        def handler(exc, context):
            response = api_exception_handler(exc, context)
            return openai_error(response) if response is not None else None
        return handler

    def permission_denied(self, request, message=None, code=None):
        if request.authenticators and not request.successful_authenticator:
            raise exceptions.NotAuthenticated("Send an API key: Authorization: Bearer trt_…")
        super().permission_denied(request, message, code)


class ChatCompletionsView(OpenAIView):
    @extend_schema(request=ChatCompletionRequestSerializer, responses=dict, operation_id="chat_completions_create")
    def post(self, request):
        """A chat completion from a registered model version (`model`: `name:label`, `name@alias` or `name`,
        which means its champion). `stream: true` answers with server-sent `chat.completion.chunk` events."""
        completion = services.chat_completion_create(user=request.user, data=request.data)
        if request.data.get("stream") is True:
            return StreamingHttpResponse(_sse(completion), content_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache"})
        return Response(completion)


def _sse(completion: dict):
    for chunk in services.completion_chunks(completion):
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


class ModelListView(OpenAIView):
    @extend_schema(responses=dict, operation_id="v1_models_list")
    def get(self, request):
        """The versions and aliases the caller may ask (OpenAI's model list)."""
        return Response({"object": "list", "data": selectors.served_models(request.user)})
