"""The fast canonical form must be byte-for-byte the standard one, or stored hashes would drift."""

import sys

import pytest

from training.trace_schema import canonical_json, compact_json_bytes, trace_content_hash


def every_code_point_but_surrogates():
    return (chr(cp) for cp in range(sys.maxunicode + 1) if not 0xD800 <= cp <= 0xDFFF)


def test_strings_encode_identically_for_every_code_point():
    chunk: list[str] = []
    for ch in every_code_point_but_surrogates():
        chunk.append(ch)
        if len(chunk) == 4096:
            text = "".join(chunk)
            assert compact_json_bytes(text) == canonical_json(text).encode("utf-8")
            chunk = []
    text = "".join(chunk)
    assert compact_json_bytes(text) == canonical_json(text).encode("utf-8")


@pytest.mark.parametrize("value", [
    {"b": 1, "a": [1, 2, {"z": "x", "y": None}], "é": True, "E": False, "aa": -3},
    {"steps": [{"i": 0, "type": "compute", "content": "2 + 2 = 4\n\t\"quoted\" \\ back"}]},
    {"big": 2**63 - 1, "small": -(2**63)},
    [],
    {},
])
def test_containers_and_ints_encode_identically(value):
    assert compact_json_bytes(value) == canonical_json(value).encode("utf-8")


@pytest.mark.parametrize("value", [{"huge": 2**70}, {"lone": "\ud800"}])
def test_values_orjson_refuses_fall_back_to_the_standard_encoder(value):
    assert compact_json_bytes(value) == canonical_json(value).encode("utf-8", "surrogatepass")


def test_content_hash_is_unchanged_by_the_fast_path():
    import hashlib

    trace = {"prompt": "Wie viel ist 2 + 2? 🤔", "final_answer": "4",
             "steps": [{"i": 0, "type": "compute", "content": "2 + 2 = 4"}], "meta": {"score": 1e-05}}
    core = {"prompt": trace["prompt"], "steps": trace["steps"], "final_answer": trace["final_answer"]}
    expected = hashlib.sha256(canonical_json(core).encode("utf-8")).hexdigest()
    assert trace_content_hash(trace) == expected
