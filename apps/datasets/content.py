"""How a dataset version's content is frozen: export lines, content hash, splits and stats.

Pure functions (no database), so the rules are easy to read and test in one place:

- A version's `data.jsonl` holds one line per trace in manifest order: the canonical JSON
  (as `training.trace_schema.canonical_json`: sorted keys, compact, UTF-8) of the `trace` export format
  (`{"id", "trace_version", "prompt", "final_answer", "steps", "meta"}`), each followed by `\\n`.
- `content_hash` = sha256 of exactly those bytes, i.e. `sha256sum data.jsonl`.
- A trace's split is a pure function of `(trace_id, seed, ratios)`: the first 8 bytes of
  sha256("<trace_id>:<seed>") as a fraction of 2**64, cut at the cumulative ratios.
"""

from __future__ import annotations

import hashlib
import json

from training.render import render_completion, render_export_line, render_prompt

# The settings of training.trace_schema.canonical_json in one reusable encoder: json.dumps builds a new
# encoder per call, a tenth of an export's time. A test pins the two to the same bytes.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)
SPLITS = ("train", "val", "test")
SPLIT_METHOD = "sha256('<trace_id>:<seed>')[:8] / 2**64 against cumulative ratios"
CONTENT_HASH_METHOD = "sha256 of data.jsonl: canonical `trace` export lines in manifest order, each + '\\n'"
_SCALE = 2**64


def trace_line(trace: dict, trace_id: str) -> str:
    """The frozen line of one trace (no newline); `trace` is the SPEC §2.1 body."""
    return _CANONICAL.encode(render_export_line("trace", trace, str(trace_id)))


def export_line(fmt: str, frozen_line: str) -> str:
    """Re-render a frozen `trace` line in another export format, canonically (no newline)."""
    if fmt == "trace":
        return frozen_line
    trace = json.loads(frozen_line)
    trace_id = trace.pop("id")
    return _CANONICAL.encode(render_export_line(fmt, trace, trace_id))


def split_cuts(ratios: dict) -> tuple[int, int]:
    """Integer thresholds on [0, 2**64): below the first is train, below the second val, else test.

    Empty splits get no share at all, so float rounding can never put a trace into a split whose
    ratio is 0.
    """
    train_cut = round(ratios["train"] * _SCALE)
    val_cut = train_cut + round(ratios["val"] * _SCALE)
    if ratios["test"] == 0:
        val_cut = _SCALE
        if ratios["val"] == 0:
            train_cut = _SCALE
    return train_cut, val_cut


def split_for(trace_id: str, seed: int, cuts: tuple[int, int]) -> str:
    digest = hashlib.sha256(f"{trace_id}:{seed}".encode()).digest()
    point = int.from_bytes(digest[:8], "big")
    if point < cuts[0]:
        return "train"
    return "val" if point < cuts[1] else "test"


class ContentAccumulator:
    """Consumes a version's traces in order; yields the hash, split counts and stats at the end."""

    def __init__(self, *, seed: int, ratios: dict):
        self._cuts = split_cuts(ratios)
        self._seed = seed
        self._digest = hashlib.sha256()
        self.splits: list[str] = []
        self._steps: list[int] = []
        self._chars = {"prompt": 0, "completion": 0}
        self._categories: dict[str, int] = {}

    def add(self, trace: dict, trace_id: str) -> tuple[str, str]:
        """Account for one trace; returns its (frozen line, split)."""
        line = trace_line(trace, trace_id)
        self._digest.update(line.encode("utf-8"))
        self._digest.update(b"\n")
        split = split_for(str(trace_id), self._seed, self._cuts)
        self.splits.append(split)
        self._steps.append(len(trace["steps"]))
        self._chars["prompt"] += len(render_prompt(trace["prompt"]))
        self._chars["completion"] += len(render_completion(trace["steps"], trace["final_answer"]))
        category = str((trace.get("meta") or {}).get("category") or "uncategorized")
        self._categories[category] = self._categories.get(category, 0) + 1
        return line, split

    @property
    def content_hash(self) -> str:
        return self._digest.hexdigest()

    def split_counts(self) -> dict:
        return {name: self.splits.count(name) for name in SPLITS}

    def stats(self) -> dict:
        n = len(self._steps)
        if n == 0:
            return {}
        prompt_chars, completion_chars = self._chars["prompt"], self._chars["completion"]
        return {
            "avg_steps": round(sum(self._steps) / n, 3),
            "min_steps": min(self._steps),
            "max_steps": max(self._steps),
            # Characters of the rendered tunix_sft text (prompt + completion): what max_seq_len must hold.
            "avg_chars": round((prompt_chars + completion_chars) / n, 1),
            "avg_prompt_chars": round(prompt_chars / n, 1),
            "avg_completion_chars": round(completion_chars / n, 1),
            "category_counts": dict(sorted(self._categories.items())),
        }
