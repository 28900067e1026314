"""POST /api/datasets/ingest: NDJSON body or multipart file, all-or-nothing or skipping bad lines."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from apps.traces.models import Trace
from apps.traces.testing import make_trace_body

INGEST = "/api/datasets/ingest"


def _ndjson(*items) -> bytes:
    return b"".join((item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items)


def _post(client, raw: bytes, mode=None, content_type="application/x-ndjson"):
    return client.generic("POST", INGEST + (f"?mode={mode}" if mode else ""), raw, content_type=content_type)


MIXED = [
    make_trace_body(),
    b"",                               # line 2: blank, skipped
    b"{not json",                      # line 3
    b"[1, 2]",                         # line 4
    b'{"prompt": "\xff\xfe"}',         # line 5: invalid UTF-8
    make_trace_body(final_answer=""),  # line 6: invalid trace
    make_trace_body(),                 # line 7
]


@pytest.mark.django_db
def test_a_clean_upload_is_stored_in_one_go(write_client):
    raw = _ndjson(*(make_trace_body() for _ in range(3)))
    response = _post(write_client, raw)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 3 and body["lines"] == 3 and body["errors"] == []
    assert Trace.objects.filter(id__in=body["ids"], status="captured").count() == 3


@pytest.mark.django_db
def test_all_or_nothing_stores_nothing_and_names_every_bad_line(write_client):
    response = _post(write_client, _ndjson(*MIXED))
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "validation_error" and "nothing was stored" in body["detail"]
    errors = {e["line"]: e["error"] for e in body["errors"]}
    assert set(errors) == {3, 4, 5, 6}
    assert "Not valid JSON" in errors[3]
    assert "JSON object" in errors[4] and "array" in errors[4]
    assert "UTF-8" in errors[5]
    assert "final_answer" in errors[6]
    assert Trace.objects.count() == 0


@pytest.mark.django_db
def test_skip_invalid_stores_the_valid_lines_and_reports_the_rest(write_client):
    response = _post(write_client, _ndjson(*MIXED), mode="skip_invalid")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] == 2 and body["blank_lines"] == 1 and body["error_count"] == 4
    assert [e["line"] for e in body["errors"]] == [3, 4, 5, 6]
    assert body["errors"][3]["fields"]["final_answer"]
    assert Trace.objects.count() == 2


@pytest.mark.django_db
def test_skip_invalid_with_nothing_valid_is_400(write_client):
    response = _post(write_client, b"{bad\n[]\n", mode="skip_invalid")
    assert response.status_code == 400
    assert response.json()["error_count"] == 2


@pytest.mark.django_db
def test_duplicates_are_reported_by_line_not_stored_twice(write_client):
    trace = make_trace_body()
    first = _post(write_client, _ndjson(trace)).json()
    response = _post(write_client, _ndjson(make_trace_body(), trace, trace))
    body = response.json()
    assert body["created"] == 1
    assert body["duplicates"] == [{"line": 2, "existing_id": first["ids"][0]},
                                  {"line": 3, "existing_id": first["ids"][0]}]
    assert Trace.objects.count() == 2


@pytest.mark.django_db
def test_a_multipart_upload_works_like_a_body(write_client):
    upload = SimpleUploadedFile("traces.jsonl", _ndjson(make_trace_body(), b"oops"), "application/x-ndjson")
    response = write_client.post(INGEST, {"file": upload, "mode": "skip_invalid"}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 1 and response.json()["errors"][0]["line"] == 2


@pytest.mark.django_db
def test_crlf_line_ends_and_a_byte_order_mark_are_accepted(write_client):
    raw = b"\xef\xbb\xbf" + _ndjson(make_trace_body(), make_trace_body()).replace(b"\n", b"\r\n")
    response = _post(write_client, raw)
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 2


@pytest.mark.django_db
def test_larger_uploads_are_stored_in_batches_in_one_transaction(write_client, settings):
    settings.TRACE_BATCH_MAX_ITEMS = 4
    items = [make_trace_body() for _ in range(9)] + [b"{bad"]
    assert _post(write_client, _ndjson(*items)).status_code == 400
    assert Trace.objects.count() == 0
    response = _post(write_client, _ndjson(*items[:9]))
    assert response.json()["created"] == 9


@pytest.mark.django_db
@pytest.mark.parametrize("raw, needle", [(b"", "empty"), (b"\n  \n\n", "blank")])
def test_an_empty_upload_is_400(write_client, raw, needle):
    response = _post(write_client, raw)
    assert response.status_code == 400
    assert needle in response.json()["detail"]["file"][0]


@pytest.mark.django_db
@override_settings(INGEST_MAX_BYTES=4096)
def test_an_oversize_upload_is_413(write_client):
    raw = _ndjson(*(make_trace_body() for _ in range(20)))
    assert len(raw) > 4096
    response = _post(write_client, raw)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large" and "4096" in response.json()["detail"]
    upload = SimpleUploadedFile("big.jsonl", raw, "application/x-ndjson")
    assert write_client.post(INGEST, {"file": upload}, format="multipart").status_code == 413
    assert Trace.objects.count() == 0


@pytest.mark.django_db
@override_settings(TRACE_MAX_BYTES=2048)
def test_an_oversize_line_is_413_naming_the_line(write_client):
    raw = _ndjson(make_trace_body(), make_trace_body(prompt="x" * 3000))
    response = _post(write_client, raw, mode="skip_invalid")
    assert response.status_code == 413
    assert "Line 2" in response.json()["detail"]
    assert Trace.objects.count() == 0


@pytest.mark.django_db
@override_settings(TRACE_MAX_BYTES=2048)
def test_a_runaway_line_without_newlines_is_refused_early(write_client):
    upload = SimpleUploadedFile("one-line.jsonl", b"x" * 600_000, "application/x-ndjson")
    response = write_client.post(INGEST, {"file": upload}, format="multipart")
    assert response.status_code == 413 and "Line 1" in response.json()["detail"]


@pytest.mark.django_db
def test_a_server_path_is_never_read(write_client):
    responses = [
        write_client.post(INGEST, {"path": "/etc/passwd"}, format="json"),
        write_client.post(INGEST, {"path": "/etc/passwd"}, format="multipart"),
        write_client.generic("POST", INGEST + "?path=/etc/passwd", _ndjson(make_trace_body()),
                             content_type="application/x-ndjson"),
    ]
    for response in responses:
        assert response.status_code == 400, response.content
        assert "path" in response.json()["detail"]
    assert Trace.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_mode_and_a_json_body_are_refused(write_client):
    assert _post(write_client, _ndjson(make_trace_body()), mode="some").status_code == 400
    response = write_client.post(INGEST, [make_trace_body()], format="json")
    assert response.status_code == 415
    assert "NDJSON" in response.json()["detail"]
    assert Trace.objects.count() == 0
