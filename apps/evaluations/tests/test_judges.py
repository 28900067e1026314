"""The judge set an evaluation records, the hand-written outputs the issue names, and the llm judge's
mock, timeout and malformed-reply paths against a local HTTP server."""

import http.server
import json
import threading
import time

import pytest

from apps.core.errors import Invalid
from apps.evaluations import judges
from training.evaluate import judge

ITEM = {"prompt": "What is 7 + 5?", "expected_answer": "12"}


@pytest.mark.parametrize(("output", "expected", "correct", "format_ok", "reasoning_ok"), [
    ("The answer is 12.", "12", False, False, False),                                       # right answer, no format
    ("<answer>12</answer>", "12", True, False, False),                                      # answer without reasoning
    ("<reasoning>7 + 5 = 12</reasoning><answer>13</answer>", "12", False, True, True),      # format, wrong answer
    ("<reasoning>sum</reasoning><answer>1,000</answer>", "1000", True, True, True),
    ("<reasoning>cost</reasoning><answer>3.50</answer>", "3.5", True, True, True),
    ("<reasoning>none left</reasoning><answer>-0</answer>", "0", True, True, True),
    ("<reasoning>7 + 5 = 12<answer>12", "12", False, False, False),                         # missing closing tags
    ("<reasoning>a</reasoning><answer>11</answer><answer>12</answer>", "12", True, False, True),  # repeated tags
    ("<reasoning>7 + 5 = 13</reasoning><answer>13</answer>", "13", True, True, False),      # untrue claim
])
def test_hand_written_outputs(output, expected, correct, format_ok, reasoning_ok):
    scored = judge({"expected_answer": expected}, output)
    assert (scored["correct"], scored["format_ok"], scored["reasoning_ok"]) == (correct, format_ok, reasoning_ok)


def test_the_required_judges_are_always_in_the_set():
    assert [j["name"] for j in judges.judge_set(["reasoning_checks"])] == ["answer_exact", "format",
                                                                           "reasoning_checks"]
    assert judges.judge_key(judges.judge_set(None)) == "answer_exact@1+format@1+reasoning_checks@1"


def test_an_unknown_judge_is_refused():
    with pytest.raises(Invalid) as raised:
        judges.judge_set(["answer_exact", "vibes"])
    assert "vibes" in raised.value.message


def test_the_mock_llm_judge_is_deterministic_and_labelled(settings):
    settings.REDIAI_MODE = "mock"
    scored = {"correct": True, "format_ok": True, "reasoning_ok": True}
    first = judges.llm_judge(ITEM, "<reasoning>7 + 5 = 12</reasoning><answer>12</answer>", scored)
    assert first == judges.llm_judge(ITEM, "anything", scored)
    assert (first["mode"], first["score"], first["rubric_sha256"]) == ("mock", 1.0, judges.RUBRIC_HASH)
    assert judges.llm_judge(ITEM, "x", {"correct": False, "format_ok": False})["score"] == 0.0


class _Judge(http.server.BaseHTTPRequestHandler):
    reply: bytes = b""
    delay = 0.0
    calls = 0

    def do_POST(self):  # noqa: N802 - http.server's name
        type(self).calls += 1
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(self.delay)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def judge_server(settings):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.REDIAI_MODE, settings.REDIAI_TIMEOUT_S = "real", 1
    settings.REDIAI_BASE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    _Judge.calls, _Judge.delay = 0, 0.0
    yield _Judge
    server.shutdown()


def test_a_real_reply_is_parsed(judge_server):
    judge_server.reply = json.dumps({"text": 'Sure. {"score": 0.75, "verdict": "partially_correct", "reason": "ok"}'}
                                    ).encode()
    result = judges.llm_judge(ITEM, "output", {"correct": False, "format_ok": True})
    assert (result["mode"], result["score"], result["verdict"]) == ("real", 0.75, "partially_correct")


def test_a_malformed_reply_is_stored_as_an_error_not_a_score(judge_server):
    judge_server.reply = json.dumps({"text": "I think it is fine"}).encode()
    result = judges.llm_judge(ITEM, "output", {"correct": True, "format_ok": True})
    assert (result["score"], result["error"]) == (None, "malformed_reply")


def test_a_timeout_is_retried_once_then_recorded(judge_server):
    judge_server.reply, judge_server.delay = b"{}", 1.5
    result = judges.llm_judge(ITEM, "output", {"correct": True, "format_ok": True})
    assert (result["score"], result["error"]) == (None, "timeout")
    assert judge_server.calls == 2
