"""The llm_judge's openai mode against a small OpenAI-compatible server in a thread (it stands in for the
external grader): the request it sends, how replies, errors and timeouts are stored, retries, the judge key,
the summary in an evaluation's metrics, the system checks and /api/redi/health."""

import http.server
import json
import threading
import time

import pytest
from django.test import override_settings

from apps.core.checks import check_llm_judge_settings, check_rediai_settings
from apps.evaluations import judges
from apps.evaluations.models import Prediction
from apps.evaluations.selectors import evaluation_metrics
from apps.evaluations.tests.factories import scored_evaluation

ITEM = {"prompt": "What is 7 + 5?", "expected_answer": "12"}
SCORED = {"correct": True, "format_ok": True, "reasoning_ok": True}
KEY = "sk-test-secret-0123456789"
VERDICT = '{"score": 0.75, "verdict": "partially_correct", "reason": "the sum is right, the steps thin"}'


def completion(content, *, model="reasoner-v3", fingerprint="fp_abc123"):
    return 200, {"id": "chatcmpl-1", "object": "chat.completion", "model": model, "system_fingerprint": fingerprint,
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                              "finish_reason": "stop"}]}


class _Server(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, body[, delay]) of `server.script` (the last repeats) and
    records it in `server.requests`."""

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._answer(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        self._answer(None)

    def _answer(self, body):
        requests = self.server.requests
        requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
        status, payload, *delay = self.server.script[min(len(requests), len(self.server.script)) - 1]
        time.sleep(delay[0] if delay else 0)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and went away: what a slow server sees

    def log_message(self, *args):
        pass


@pytest.fixture
def grader(settings, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    server.requests, server.script = [], [completion(VERDICT)]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    settings.LLM_JUDGE_MODE, settings.LLM_JUDGE_MODEL, settings.LLM_JUDGE_API_KEY = "openai", "reasoner@champion", KEY
    settings.LLM_JUDGE_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}/v1"
    settings.LLM_JUDGE_TIMEOUT_S, settings.LLM_JUDGE_RETRIES, settings.LLM_JUDGE_MAX_TOKENS = 1, 1, 128
    monkeypatch.setattr(judges, "_BACKOFF_S", 0.01)
    yield server
    server.shutdown()
    server.server_close()


def test_it_posts_the_rubric_to_chat_completions_with_the_bearer_key(grader):
    judges.llm_judge(ITEM, "<reasoning>7 + 5 = 12</reasoning><answer>12</answer>", SCORED)
    [request] = grader.requests
    assert (request["method"], request["path"]) == ("POST", "/v1/chat/completions")
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert (body["model"], body["temperature"], body["max_tokens"], body["seed"]) == ("reasoner@champion", 0, 128, 0)
    [message] = body["messages"]
    assert message["role"] == "user"
    assert message["content"] == judges.RUBRIC.format(prompt=ITEM["prompt"], expected="12",
                                                      output="<reasoning>7 + 5 = 12</reasoning><answer>12</answer>")


def test_a_json_verdict_is_parsed_and_the_judge_model_and_fingerprint_recorded(grader):
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["mode"], result["score"], result["verdict"]) == ("openai", 0.75, "partially_correct")
    assert (result["judge_model"], result["judge_fingerprint"]) == ("reasoner-v3", "fp_abc123")
    assert (result["rubric_sha256"], result["judge_version"]) == (judges.RUBRIC_HASH, judges.LLM_JUDGE_VERSION)
    assert KEY not in json.dumps(result)


def test_a_reply_without_a_fingerprint_records_null(grader):
    grader.script = [completion(VERDICT, fingerprint=None)]
    assert judges.llm_judge(ITEM, "output", SCORED)["judge_fingerprint"] is None


def test_a_reply_that_is_not_a_json_verdict_is_malformed_not_a_score(grader):
    grader.script = [completion("I think the answer is fine.")]
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], result["error"], result["message"]) == (None, "malformed_reply",
                                                                     "I think the answer is fine.")
    assert (result["mode"], result["judge_model"]) == ("openai", "reasoner-v3")
    assert len(grader.requests) == 1, "a deterministic grader's bad answer is not asked again"


def test_a_body_that_is_not_json_is_malformed(grader):
    grader.script = [(200, b"<html>proxy error</html>")]
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], result["error"], result["judge_model"]) == (None, "malformed_reply", "reasoner@champion")


def test_a_503_is_retried_and_the_second_answer_counts(grader):
    grader.script = [(503, {"error": {"message": "overloaded"}}), completion(VERDICT)]
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], len(grader.requests)) == (0.75, 2)


def test_a_429_after_every_retry_is_stored_as_its_status(grader):
    grader.script = [(429, {"error": {"message": "rate limited"}})]
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], result["error"], len(grader.requests)) == (None, "http_429", 2)


def test_a_400_is_not_retried_and_an_echoed_key_is_redacted(grader):
    grader.script = [(400, {"error": {"message": f"bad request with key {KEY}"}})]
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], result["error"], len(grader.requests)) == (None, "http_400", 1)
    assert result["message"] == "HTTP 400: bad request with key [redacted]"
    assert (result["judge_model"], result["judge_fingerprint"]) == ("reasoner@champion", None)


def test_a_reply_slower_than_the_timeout_is_stored_as_a_timeout(grader, settings):
    settings.LLM_JUDGE_RETRIES = 0
    grader.script = [(*completion(VERDICT), 1.3)]
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], result["error"], result["mode"]) == (None, "timeout", "openai")


def test_a_timeout_is_retried(grader):
    grader.script = [(*completion(VERDICT), 1.3), completion(VERDICT)]
    assert judges.llm_judge(ITEM, "output", SCORED)["score"] == 0.75
    assert len(grader.requests) == 2


def test_a_server_that_is_not_there_is_unavailable(grader, settings):
    settings.LLM_JUDGE_BASE_URL = "http://127.0.0.1:1/v1"
    result = judges.llm_judge(ITEM, "output", SCORED)
    assert (result["score"], result["error"]) == (None, "unavailable")


def test_the_judge_set_records_the_mode_and_model(settings):
    settings.LLM_JUDGE_MODE, settings.LLM_JUDGE_MODEL = "openai", "reasoner@champion"
    entry = judges.judge_set(["llm_judge"])[-1]
    assert entry == {"name": "llm_judge", "version": "1", "mode": "openai", "rubric_sha256": judges.RUBRIC_HASH,
                     "model": "reasoner@champion"}
    assert judges.judge_key([entry]) == f"llm_judge@1:openai:reasoner@champion:{judges.RUBRIC_HASH[:12]}"


def test_judges_of_other_models_or_modes_never_share_a_key(settings):
    settings.LLM_JUDGE_MODE, settings.LLM_JUDGE_MODEL = "openai", "reasoner@champion"
    champion = judges.judge_key(judges.judge_set(["llm_judge"]))
    settings.LLM_JUDGE_MODEL = "reasoner@candidate"
    candidate = judges.judge_key(judges.judge_set(["llm_judge"]))
    settings.LLM_JUDGE_MODE = "mock"
    mock = judges.judge_key(judges.judge_set(["llm_judge"]))
    assert len({champion, candidate, mock}) == 3


def test_a_long_model_name_keeps_the_key_within_its_column(settings):
    settings.LLM_JUDGE_MODE, settings.LLM_JUDGE_MODEL = "openai", "org/" + "x" * 300
    key = judges.judge_key(judges.judge_set(list(judges.AVAILABLE)))
    settings.LLM_JUDGE_MODEL = "org/" + "x" * 299 + "y"
    assert len(key) <= 200 and key != judges.judge_key(judges.judge_set(list(judges.AVAILABLE)))


@pytest.mark.parametrize(("rediai_mode", "stored"), [("mock", "mock"), ("real", "real")])
def test_without_llm_judge_mode_the_rediai_mode_decides_and_keeps_its_key(settings, rediai_mode, stored):
    settings.LLM_JUDGE_MODE, settings.REDIAI_MODE = "", rediai_mode
    judge_set = judges.judge_set(["answer_exact", "llm_judge"])
    assert judge_set[-1]["mode"] == stored
    assert judges.judge_key(judge_set) == f"answer_exact@1+format@1+llm_judge@1:{stored}:{judges.RUBRIC_HASH[:12]}"


def test_the_rediai_mode_is_stored_as_real(settings):
    settings.LLM_JUDGE_MODE, settings.REDIAI_MODE = "rediai", "mock"
    assert judges.judge_set(["llm_judge"])[-1]["mode"] == "real"


@pytest.mark.django_db
def test_an_evaluations_llm_judge_summary_names_the_grading_model(small_set):
    evaluation = scored_evaluation(None, small_set, [True, False, True])
    results = [{"mode": "openai", "score": 1.0, "judge_model": "reasoner-v3"},
               {"mode": "openai", "score": 0.5, "judge_model": "reasoner-v3"},
               {"mode": "openai", "score": None, "error": "timeout", "judge_model": "reasoner@champion"}]
    for prediction, result in zip(evaluation.predictions.order_by("item__position"), results, strict=True):
        Prediction.objects.filter(pk=prediction.pk).update(llm_judge=result)
    summary = evaluation_metrics(evaluation)["llm_judge"]
    assert summary == {"mode": "openai", "mean_score": 0.75, "scored": 2, "errors": 1, "judge_model": "reasoner-v3"}


@override_settings(LLM_JUDGE_MODE="gpt")
def test_an_unknown_llm_judge_mode_is_an_error():
    assert [e.id for e in check_llm_judge_settings(None)] == ["tunixrt.E005"]


@override_settings(LLM_JUDGE_MODE="openai", LLM_JUDGE_BASE_URL="127.0.0.1:8000/v1", LLM_JUDGE_MODEL="")
def test_openai_mode_without_an_http_url_or_a_model_is_an_error():
    assert [e.id for e in check_llm_judge_settings(None)] == ["tunixrt.E006", "tunixrt.E007"]


@override_settings(LLM_JUDGE_MODE="openai", LLM_JUDGE_BASE_URL="https://judge.example/v1", LLM_JUDGE_MODEL="m",
                   REDIAI_MODE="real", REDIAI_BASE_URL="")
def test_a_complete_openai_mode_passes_and_needs_no_rediai_url():
    assert check_llm_judge_settings(None) == [] and check_rediai_settings(None) == []


@override_settings(LLM_JUDGE_MODE="rediai", REDIAI_MODE="mock", REDIAI_BASE_URL="")
def test_the_rediai_mode_without_a_rediai_url_is_an_error():
    assert [e.id for e in check_rediai_settings(None)] == ["tunixrt.E003"]


def test_redi_health_in_openai_mode_probes_the_models_list_without_leaking_the_key(grader, anon_client):
    grader.script = [(200, {"object": "list", "data": [{"id": "reasoner@champion"}]})]
    first = anon_client.get("/api/redi/health")
    second = anon_client.get("/api/redi/health")
    assert first.status_code == 200
    report = first.json()
    assert (report["status"], report["mode"], report["model"]) == ("healthy", "openai", "reasoner@champion")
    assert report["probe"]["model_listed"] is True and report["cached"] is False and second.json()["cached"] is True
    [request] = grader.requests
    assert (request["method"], request["path"], request["headers"]["Authorization"]) == (
        "GET", "/v1/models", f"Bearer {KEY}")
    assert KEY not in first.content.decode()
    assert str(grader.server_address[1]) not in first.content.decode(), "the address stays in the log"


def test_redi_health_in_openai_mode_is_503_when_the_server_is_down(grader, settings, anon_client):
    settings.LLM_JUDGE_BASE_URL = "http://127.0.0.1:1/v1"
    response = anon_client.get("/api/redi/health")
    assert response.status_code == 503 and response.json()["status"] == "down"
