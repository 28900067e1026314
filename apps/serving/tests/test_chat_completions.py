"""`/v1/chat/completions` answers in OpenAI's shape from a version's stored weights, exactly as the run's own
generator would, for callers who can see the version; bad requests get OpenAI's error object and a 4xx."""

import json

import pytest
from rest_framework.test import APIClient

from apps.core.testing import key_client
from apps.serving.host import model_host
from training.generate import generate_batch, load_model
from training.render import render_prompt

URL = "/v1/chat/completions"
QUESTION = "What is 12 + 5? (#3)"


def _ask(client, model="reasoner:v1", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 24,
            "temperature": 0, **extra}
    return client.post(URL, body, format="json")


@pytest.mark.django_db
def test_a_version_answers_greedily_what_its_run_generates(trainer, version, trained_out):
    response = _ask(key_client(trainer, scope="read"))  # asking writes nothing: a read key may
    assert response.status_code == 200, response.content
    body = response.json()
    expected = generate_batch(load_model(trained_out), [render_prompt(QUESTION)], 24)[0]
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": expected.text}
    assert choice["finish_reason"] == ("stop" if expected.stopped else "length")
    assert body["object"] == "chat.completion" and body["model"] == "reasoner:v1"
    assert body["system_fingerprint"] == f"tunixrt-{version.pk}"
    assert body["usage"]["completion_tokens"] == len(expected.token_ids)
    assert body["usage"]["prompt_tokens"] == len(load_model(trained_out).tokenizer.encode(render_prompt(QUESTION)))
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]


@pytest.mark.django_db
def test_an_alias_and_the_bare_name_answer_with_the_version_they_point_at(trainer, champion):
    client = key_client(trainer)
    for ref in ("reasoner@champion", "reasoner"):
        response = _ask(client, model=ref)
        assert response.status_code == 200, response.content
        assert response.json()["model"] == "reasoner:v1"


@pytest.mark.django_db
def test_sampling_is_seeded_and_n_gives_that_many_choices(trainer, version):
    client = key_client(trainer)
    first = _ask(client, temperature=1.0, seed=11, n=3).json()
    again = _ask(client, temperature=1.0, seed=11, n=3).json()
    assert len(first["choices"]) == 3 and [c["index"] for c in first["choices"]] == [0, 1, 2]
    assert [c["message"] for c in first["choices"]] == [c["message"] for c in again["choices"]]


@pytest.mark.django_db
def test_a_stop_sequence_cuts_the_answer_and_says_stop(trainer, version):
    client = key_client(trainer)
    full = _ask(client).json()["choices"][0]["message"]["content"]
    assert len(full) > 3, "the tiny model answered nothing to cut"
    stop = full[2:4]
    cut = _ask(client, stop=[stop]).json()["choices"][0]
    assert cut["message"]["content"] == full[: full.index(stop)] and cut["finish_reason"] == "stop"


@pytest.mark.django_db
def test_streaming_sends_the_same_answer_as_chunks_then_done(trainer, version):
    client = key_client(trainer)
    whole = _ask(client).json()
    response = _ask(client, stream=True)
    assert response.status_code == 200 and response["Content-Type"] == "text/event-stream"
    events = [line[len("data: "):] for line in b"".join(response.streaming_content).decode().split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == whole["usage"]


@pytest.mark.django_db
def test_v1_models_lists_what_the_caller_may_ask_and_nothing_else(trainer, outsider, champion):
    ids = [m["id"] for m in key_client(trainer).get("/v1/models").json()["data"]]
    assert ids == ["reasoner:v1", "reasoner@champion"]
    assert key_client(outsider).get("/v1/models").json()["data"] == []


def _error(response, status, param=None, code=None):
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.mark.django_db
def test_a_version_outside_the_callers_reach_is_model_not_found(outsider, version):
    _error(_ask(key_client(outsider)), 404, code="model_not_found")


@pytest.mark.django_db
def test_no_key_or_a_bad_key_is_401_in_openais_shape(version):
    _error(_ask(APIClient()), 401, code="invalid_api_key")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer trt_nope_nope")
    _error(_ask(client), 401, code="invalid_api_key")


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "param"), [
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user"}]}, "messages.0.content"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": {}}]}]}, "messages.0.content"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}, "messages"),
    ({"max_tokens": 129}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": "24"}, "max_tokens"),
    ({"n": 9}, "n"),
    ({"temperature": 2.5}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"model": 7}, "model"),
])
def test_a_bad_request_is_400_naming_the_field(trainer, version, change, param):
    _error(_ask(key_client(trainer), **change), 400, param=param)


@pytest.mark.django_db
@pytest.mark.parametrize("ref", ["reasoner:v9", "nobody:v1", "reasoner@candidate", "reasoner", "../x", "reasoner:"])
def test_an_unknown_model_version_or_alias_is_404(trainer, version, ref):
    _error(_ask(key_client(trainer), model=ref), 404, code="model_not_found")


@pytest.mark.django_db
def test_a_prompt_longer_than_the_context_is_400_from_the_model_itself(trainer, version):
    response = _ask(key_client(trainer), messages=[{"role": "user", "content": "7 + 5 " * 100}])
    _error(response, 400, param="messages", code="context_length_exceeded")


@pytest.mark.django_db
def test_a_killed_model_host_is_replaced_on_the_next_request(trainer, version):
    client = key_client(trainer)
    assert _ask(client).status_code == 200
    host = model_host()
    starts = host.starts
    host._process.kill()
    host._process.wait()
    response = _ask(client)
    assert response.status_code == 200, response.content
    assert host.starts == starts + 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_openai_client_library_calls_the_endpoint_unchanged(live_server, trainer, champion):
    import openai

    from apps.core.services import api_key_create

    _, token = api_key_create(user=trainer, name="openai-client", scope="read")
    client = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=token, max_retries=0)
    messages = [{"role": "user", "content": QUESTION}]
    answer = client.chat.completions.create(model="reasoner@champion", messages=messages, max_tokens=24,
                                            temperature=0)
    assert answer.model == "reasoner:v1" and answer.choices[0].message.role == "assistant"
    assert answer.usage.completion_tokens > 0
    streamed = client.chat.completions.create(model="reasoner:v1", messages=messages, max_tokens=24,
                                              temperature=0, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in streamed if chunk.choices)
    assert text == answer.choices[0].message.content
    assert [m.id for m in client.models.list()] == ["reasoner:v1", "reasoner@champion"]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="reasoner:v7", messages=messages)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="reasoner:v1", messages=messages, max_tokens=10_000)
    assert bad.value.param == "max_tokens"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="trt_x_y", max_retries=0).models.list()


@pytest.mark.django_db
def test_served_completions_and_their_tokens_are_counted_in_metrics(trainer, version, client):
    from prometheus_client import REGISTRY

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (sample("tunixrt_chat_completions_total", outcome="ok"),
              sample("tunixrt_chat_completion_tokens_total", kind="completion"))
    answer = _ask(key_client(trainer)).json()
    _ask(key_client(trainer), messages=[{"role": "user", "content": "7 + 5 " * 100}])
    assert sample("tunixrt_chat_completions_total", outcome="ok") == before[0] + 1
    assert sample("tunixrt_chat_completion_tokens_total", kind="completion") == (
        before[1] + answer["usage"]["completion_tokens"])
    assert sample("tunixrt_chat_completions_total", outcome="context_length_exceeded") >= 1
    assert "tunixrt_chat_completions_total" in client.get("/metrics").content.decode()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_host_killed_while_a_request_waits_answers_503_and_the_next_request_is_served(trainer, version):
    import os
    import signal
    import threading
    import time

    from django.db import connection

    def ask_in_a_thread():
        try:
            answers.append(_ask(client))
        finally:
            connection.close()

    client = key_client(trainer)
    assert _ask(client).status_code == 200
    host = model_host()
    process = host._process
    os.kill(process.pid, signal.SIGSTOP)  # the host is stuck: the request below waits on it
    answers = []
    waiting = threading.Thread(target=ask_in_a_thread)
    waiting.start()
    deadline = time.monotonic() + 10
    while not host._pending and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    waiting.join(timeout=30)
    _error(answers[0], 503, code="model_host_exited")
    assert _ask(client).status_code == 200
