"""The pure rules behind versions: split assignment, quotas for stratified selection, line splitting."""

import hashlib
import uuid

import pytest

from apps.core.errors import TooLarge
from apps.datasets.content import ContentAccumulator, export_line, split_cuts, split_for, trace_line
from apps.datasets.ingest import iter_lines
from apps.datasets.selectors import balanced_quotas
from training.render import EXPORT_FORMATS, render_export_line
from training.trace_schema import canonical_json

TRACE = {"trace_version": "1.0", "prompt": "2+2?", "final_answer": "4",
         "steps": [{"i": 0, "type": "compute", "content": "2 + 2 = 4"}], "meta": {"category": "arithmetic"}}


@pytest.mark.parametrize("ratios, allowed", [
    ({"train": 1.0, "val": 0.0, "test": 0.0}, {"train"}),
    ({"train": 0.7, "val": 0.3, "test": 0.0}, {"train", "val"}),
    ({"train": 0.0, "val": 0.0, "test": 1.0}, {"test"}),
    ({"train": 0.5, "val": 0.0, "test": 0.5}, {"train", "test"}),
])
def test_a_split_with_ratio_zero_never_receives_a_trace(ratios, allowed):
    cuts = split_cuts(ratios)
    seen = {split_for(str(uuid.uuid4()), 0, cuts) for _ in range(2000)}
    assert seen == allowed


def test_split_shares_follow_the_ratios():
    cuts = split_cuts({"train": 0.8, "val": 0.1, "test": 0.1})
    splits = [split_for(f"trace-{n}", 42, cuts) for n in range(20_000)]
    assert abs(splits.count("train") / 20_000 - 0.8) < 0.02
    assert abs(splits.count("test") / 20_000 - 0.1) < 0.02


@pytest.mark.parametrize("sizes, total, expected", [
    ({"a": 30, "b": 10, "c": 4}, 18, {"a": 7, "b": 7, "c": 4}),
    ({"a": 30, "b": 10, "c": 4}, 100, {"a": 30, "b": 10, "c": 4}),
    ({"a": 5, "b": 5}, 7, {"a": 4, "b": 3}),
    ({"x": 1, "y": 9, "z": 9}, 9, {"x": 1, "y": 4, "z": 4}),
    ({"a": 3}, 0, {"a": 0}),
])
def test_quotas_are_as_equal_as_the_strata_allow(sizes, total, expected):
    quotas = balanced_quotas(sizes, total)
    assert quotas == expected
    assert sum(quotas.values()) == min(total, sum(sizes.values()))


def test_every_export_format_renders_from_the_frozen_line():
    line = trace_line(TRACE, "t-1")
    assert export_line("trace", line) == line
    assert '"text":"<start_of_turn>user\\n2+2?<end_of_turn>\\n<start_of_turn>model\\n<reasoning>2 + 2 = 4' \
        in export_line("tunix_sft", line)
    assert export_line("messages", line).startswith('{"messages":[{"content":"2+2?","role":"user"}')


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_export_lines_are_exactly_the_canonical_json_of_the_renderer(fmt):
    meta = {"z": [1, {"b": "é", "a": None}], "category": "arithmetic", "ünï": "\u2028"}
    trace = {**TRACE, "meta": meta}
    expected = canonical_json(render_export_line(fmt, trace, "t-1"))
    assert export_line(fmt, trace_line(trace, "t-1")) == expected


def test_the_accumulator_hashes_exactly_the_lines_it_returns():
    content = ContentAccumulator(seed=0, ratios={"train": 1.0, "val": 0.0, "test": 0.0})
    lines = [content.add(TRACE, f"t-{n}")[0] for n in range(3)]
    assert content.content_hash == hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    assert content.stats()["category_counts"] == {"arithmetic": 3}
    assert content.split_counts() == {"train": 3, "val": 0, "test": 0}


def test_lines_split_on_newlines_across_chunk_borders():
    chunks = [b'{"a":1}\n{"b"', b':2}\n\n{"c":3}']
    assert list(iter_lines(chunks, 100)) == [(1, b'{"a":1}'), (2, b'{"b":2}'), (3, b""), (4, b'{"c":3}')]


def test_a_runaway_line_stops_the_split_early():
    with pytest.raises(TooLarge, match="Line 2"):
        list(iter_lines([b"ok\n" + b"x" * 50, b"x" * 60], 100))
