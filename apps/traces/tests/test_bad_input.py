"""Bad input gets a 4xx naming the problem, and the trace count does not move."""

import json

import pytest
from django.test import override_settings

from apps.traces.models import Trace


def _post_raw(client, path, raw: bytes, content_type="application/json"):
    return client.generic("POST", path, raw, content_type=content_type)


def _assert_rejected(response, status, *needles):
    assert response.status_code == status, response.content
    text = json.dumps(response.json())
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text}"
    assert Trace.objects.count() == 0


@pytest.mark.django_db
class TestBadTraces:
    def test_malformed_json(self, write_client):
        _assert_rejected(_post_raw(write_client, "/api/traces", b'{"prompt": "x",'), 400, "parse_error",
                         "Malformed JSON")

    def test_invalid_utf8(self, write_client):
        _assert_rejected(_post_raw(write_client, "/api/traces", b'{"prompt": "\xff\xfe"}'), 400, "UTF-8")

    def test_nan_is_not_json(self, write_client, trace_body):
        raw = json.dumps(trace_body()).replace('"meta": {', '"meta": {"x": NaN, ').encode()
        _assert_rejected(_post_raw(write_client, "/api/traces", raw), 400, "NaN")

    def test_wrong_types(self, write_client, trace_body):
        body = trace_body(prompt=12, steps="one step", meta=[1])
        _assert_rejected(write_client.post("/api/traces", body, format="json"), 400, "validation_error",
                         "prompt", "steps", "meta")

    def test_empty_steps(self, write_client, trace_body):
        _assert_rejected(write_client.post("/api/traces", trace_body(steps=[]), format="json"), 400,
                         "steps", "1 to 1000")

    @pytest.mark.parametrize("indices", [[0, 0, 1], [2, 1, 3], [0, -1, 2]])
    def test_duplicate_decreasing_or_negative_step_indices(self, write_client, trace_body, indices):
        body = trace_body()
        for step, i in zip(body["steps"], indices, strict=True):
            step["i"] = i
        _assert_rejected(write_client.post("/api/traces", body, format="json"), 400, "steps[1].i")

    def test_unknown_top_level_key_is_named(self, write_client, trace_body):
        _assert_rejected(write_client.post("/api/traces", trace_body(answer="x"), format="json"), 400,
                         '"answer"', "Unknown field")

    def test_unknown_step_key_is_named(self, write_client, trace_body):
        body = trace_body()
        body["steps"][0]["note"] = "x"
        _assert_rejected(write_client.post("/api/traces", body, format="json"), 400, "steps[0].note")

    def test_nul_bytes(self, write_client, trace_body):
        body = trace_body(final_answer="4\u0000")
        body["meta"]["k\u0000"] = "v"
        _assert_rejected(write_client.post("/api/traces", body, format="json"), 400, "final_answer", "NUL",
                         "meta")

    def test_lone_surrogate(self, write_client, trace_body):
        raw = json.dumps(trace_body()).replace('"final_answer": "', '"final_answer": "\\ud800').encode()
        _assert_rejected(_post_raw(write_client, "/api/traces", raw), 400, "final_answer", "surrogate")

    def test_a_10_mb_body_is_413(self, write_client, trace_body):
        body = trace_body(prompt="x" * (10 * 1024 * 1024))
        _assert_rejected(write_client.post("/api/traces", body, format="json"), 413, "payload_too_large",
                         "limit")

    def test_a_batch_of_1001_is_refused_naming_the_limit(self, write_client, trace_body):
        items = [trace_body() for _ in range(1001)]
        _assert_rejected(write_client.post("/api/traces/batch", items, format="json"), 400, "1000", "1001")

    @override_settings(TRACE_MAX_BYTES=4096)
    def test_an_oversize_batch_item_is_413_naming_it(self, write_client, trace_body):
        items = [trace_body(), trace_body(prompt="y" * 5000)]
        _assert_rejected(write_client.post("/api/traces/batch", items, format="json"), 413, "traces[1]")

    @override_settings(TRACE_BATCH_MAX_BYTES=8192)
    def test_an_oversize_batch_is_413(self, write_client, trace_body):
        items = [trace_body() for _ in range(40)]
        _assert_rejected(write_client.post("/api/traces/batch", items, format="json"), 413, "limit")

    def test_a_batch_that_is_not_a_list(self, write_client):
        _assert_rejected(write_client.post("/api/traces/batch", {"traces": "x"}, format="json"), 400, "list")

    def test_a_batch_with_an_unknown_key(self, write_client, trace_body):
        _assert_rejected(write_client.post("/api/traces/batch", {"traces": [trace_body()], "x": 1},
                                           format="json"), 400, '"x"')

    def test_a_body_that_is_not_an_object(self, write_client):
        _assert_rejected(write_client.post("/api/traces", [1, 2], format="json"), 400, "JSON object")

    def test_form_encoded_body_is_415(self, write_client):
        response = write_client.post("/api/traces", {"prompt": "x"})
        assert response.status_code == 415
        assert response.json()["error"] == "unsupported_media_type"

    def test_bad_list_filters_are_400(self, write_client):
        assert write_client.get("/api/traces?status=bogus").status_code == 400
        assert write_client.get("/api/traces?created_after=yesterday").status_code == 400
        assert write_client.get("/api/traces?limit=abc").status_code == 200  # DRF falls back to the default

    def test_compare_without_ids_is_400(self, write_client):
        response = write_client.get("/api/traces/compare?base=1")
        assert response.status_code == 400
        assert "other" in response.json()["detail"]
