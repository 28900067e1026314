"""Training examples from `tunix_sft` lines, and a data order that is a pure function of the step.

Example layout (tokenizer-agnostic; the Tunix backend reuses it with a SentencePiece tokenizer):

* tokens = encode(prompt) + encode(completion), plus `eos` only when the completion does not already
  end in a stop token. Our completions end in `<end_of_turn>`, which both tokenizers encode as one
  special id, so it is the terminal token the model learns to emit and generation stops on.
* `inputs = tokens[:-1]`, `targets = tokens[1:]`, both right-padded with `pad_id` to `max_seq_len`;
  `loss_mask[t] = 1` exactly when `targets[t]` is a completion token (the terminal one included), so
  the prompt and the padding never contribute to the loss.
* A sequence needs at most `max_seq_len + 1` tokens. Longer examples are DROPPED, never truncated:
  a truncated completion would teach the model to run on without closing `</answer>` or stopping.
  The number dropped is reported (`stats["dropped_too_long"]`) and lands in the run manifest.

Order: step `s` (0-based) consumes stream positions `[s*k, (s+1)*k)` where `k` examples make one
optimizer step; position `p` maps to epoch `p // n` and slot `p % n` of that epoch's permutation, and
the permutation orders example indices by sha256(data_hash, seed, epoch, index). It depends on
nothing else (no RNG state, no library version), so a resumed run sees exactly the same batches.
With `packing`, the same permutations are packed into rows of several examples (training.packing).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.tokenizers import Tokenizer, stop_ids


class DataError(ValueError):
    """The training file cannot be used; the message names the line and the key."""


@dataclass(frozen=True)
class ExampleArrays:
    inputs: np.ndarray  # int32 [n, max_seq_len]
    targets: np.ndarray  # int32 [n, max_seq_len]
    loss_mask: np.ndarray  # float32 [n, max_seq_len]
    row_index: np.ndarray  # int32 [n], index of the source row each example came from
    lengths: np.ndarray  # int32 [n], real (non-padding) positions of each example

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def take(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "inputs": self.inputs[indices],
            "targets": self.targets[indices],
            "loss_mask": self.loss_mask[indices],
        }


def read_sft_rows(path: str | Path) -> list[dict]:
    """Parse a tunix_sft JSONL file; every line needs non-empty string `prompt` and `completion`."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            rows.append(_parse_row(line, line_no))
    if not rows:
        raise DataError(f"{path}: no training rows found.")
    return rows


def _parse_row(line: str, line_no: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"line {line_no}: not valid JSON ({exc.msg}).") from exc
    if not isinstance(row, dict):
        raise DataError(f"line {line_no}: must be a JSON object with prompt and completion.")
    for key in ("prompt", "completion"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise DataError(f"line {line_no}: key {key!r} must be a non-empty string.")
    return row


def example_tokens(tokenizer: Tokenizer, prompt: str, completion: str) -> tuple[list[int], int]:
    """Full token sequence and the number of prompt tokens at its start."""
    prompt_ids = tokenizer.encode(prompt)
    completion_ids = tokenizer.encode(completion)
    if not completion_ids or completion_ids[-1] not in stop_ids(tokenizer):
        completion_ids.append(int(tokenizer.eos_id))
    return prompt_ids + completion_ids, len(prompt_ids)


def build_example(tokenizer: Tokenizer, prompt: str, completion: str, max_seq_len: int) -> dict | None:
    """One fixed-shape example, or None when it needs more than max_seq_len + 1 tokens."""
    tokens, prompt_len = example_tokens(tokenizer, prompt, completion)
    if len(tokens) > max_seq_len + 1 or prompt_len == 0:
        return None
    n = len(tokens) - 1
    inputs = np.full(max_seq_len, tokenizer.pad_id, dtype=np.int32)
    targets = np.full(max_seq_len, tokenizer.pad_id, dtype=np.int32)
    loss_mask = np.zeros(max_seq_len, dtype=np.float32)
    inputs[:n] = tokens[:-1]
    targets[:n] = tokens[1:]
    # targets[t] is tokens[t + 1]: completion tokens start at index prompt_len of `tokens`.
    loss_mask[prompt_len - 1 : n] = 1.0
    return {"inputs": inputs, "targets": targets, "loss_mask": loss_mask, "length": n}


def build_examples(rows: list[dict], tokenizer: Tokenizer, max_seq_len: int) -> tuple[ExampleArrays, dict]:
    """Stack every row that fits into arrays; stats count kept and dropped rows and token lengths."""
    kept, sources = [], []
    for index, row in enumerate(rows):
        example = build_example(tokenizer, row["prompt"], row["completion"], max_seq_len)
        if example is None:
            continue
        kept.append(example)
        sources.append(index)
    stats = {
        "rows": len(rows),
        "examples": len(kept),
        "dropped_too_long": len(rows) - len(kept),
        "max_seq_len": max_seq_len,
        "overlong_rule": "drop",
    }
    if not kept:
        raise DataError(f"All {len(rows)} rows are longer than max_seq_len + 1 = {max_seq_len + 1} tokens.")
    stats["target_tokens"] = int(sum(float(e["loss_mask"].sum()) for e in kept))
    arrays = ExampleArrays(
        inputs=np.stack([e["inputs"] for e in kept]),
        targets=np.stack([e["targets"] for e in kept]),
        loss_mask=np.stack([e["loss_mask"] for e in kept]),
        row_index=np.asarray(sources, dtype=np.int32),
        lengths=np.asarray([e["length"] for e in kept], dtype=np.int32),
    )
    stats["tokens_per_example"] = round(float(arrays.lengths.mean()) + 1, 2)  # +1: inputs drop the last token
    return arrays, stats


def epoch_permutation(data_hash: str, seed: int, epoch: int, n: int) -> np.ndarray:
    """Example indices ordered by sha256(data_hash, seed, epoch, index): the same on every machine."""
    prefix = f"{data_hash}:{seed}:{epoch}:".encode()
    keys = [hashlib.sha256(prefix + str(i).encode()).digest() for i in range(n)]
    return np.asarray(sorted(range(n), key=keys.__getitem__), dtype=np.int64)


class DataOrder:
    """Maps an optimizer step to the example indices it trains on; caches per-epoch permutations."""

    def __init__(self, data_hash: str, seed: int, num_examples: int, examples_per_step: int):
        self.data_hash = data_hash
        self.seed = seed
        self.num_examples = num_examples
        self.examples_per_step = examples_per_step
        self._epochs: dict[int, np.ndarray] = {}

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._epochs:
            if len(self._epochs) > 2:  # a run only ever looks at the current and next epoch
                self._epochs.pop(min(self._epochs))
            self._epochs[epoch] = epoch_permutation(self.data_hash, self.seed, epoch, self.num_examples)
        return self._epochs[epoch]

    def indices_for_step(self, step: int) -> np.ndarray:
        start = step * self.examples_per_step
        n = self.num_examples
        positions = range(start, start + self.examples_per_step)
        return np.asarray([self._permutation(p // n)[p % n] for p in positions], dtype=np.int64)

    def epoch_of_step(self, step: int) -> float:
        return step * self.examples_per_step / self.num_examples
