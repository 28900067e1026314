"""Packing: several whole examples per row of `max_seq_len` tokens, so little of a step is padding.

Row layout: the examples' `inputs`/`targets`/`loss_mask` are laid end to end; `positions` restart
at 0 for each example and `segments` number the examples of the row 1, 2, ... (0 is padding). The
model lets a token attend only to earlier tokens of its own segment (a block-diagonal causal mask),
so a packed example computes exactly what it would alone in a row. The loss stays completion-only
because each example brings its own loss mask.

Order: epoch `e` takes the permutation `epoch_permutation(data_hash, seed, e)` and packs it first
fit into rows (an example goes into the first open row with room; at most OPEN_ROWS rows are open,
the oldest is closed when another is needed). Step `s` trains on rows `[s*k, (s+1)*k)` of the
epochs' rows laid end to end. Every part is a pure function of (data hash, seed, step), so a
resumed run packs exactly the rows the uninterrupted one did.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from training.data import DataOrder, ExampleArrays, epoch_permutation

# More open rows fill rows more tightly, but pull later examples further forward in the epoch.
OPEN_ROWS = 8


def pack_rows(order: np.ndarray, lengths: np.ndarray, row_len: int) -> list[list[int]]:
    """Example indices per row, first fit in `order` with at most OPEN_ROWS rows open."""
    rows: list[list[int]] = []
    open_rows: deque[list] = deque()  # [free positions, member indices]
    for index in order.tolist():
        need = int(lengths[index])
        row = next((candidate for candidate in open_rows if candidate[0] >= need), None)
        if row is None:
            if len(open_rows) == OPEN_ROWS:
                rows.append(open_rows.popleft()[1])
            row = [row_len, []]
            open_rows.append(row)
        row[0] -= need
        row[1].append(index)
    rows.extend(row[1] for row in open_rows)
    return rows


def packed_rows(examples: ExampleArrays, rows: list[list[int]], row_len: int, pad_id: int) -> dict:
    """Arrays [len(rows), row_len] for these rows: inputs, targets, loss_mask, positions, segments."""
    batch = {
        "inputs": np.full((len(rows), row_len), pad_id, np.int32),
        "targets": np.full((len(rows), row_len), pad_id, np.int32),
        "loss_mask": np.zeros((len(rows), row_len), np.float32),
        "positions": np.zeros((len(rows), row_len), np.int32),
        "segments": np.zeros((len(rows), row_len), np.int32),
    }
    for r, members in enumerate(rows):
        start = 0
        for segment, index in enumerate(members, start=1):
            n = int(examples.lengths[index])
            span = slice(start, start + n)
            batch["inputs"][r, span] = examples.inputs[index, :n]
            batch["targets"][r, span] = examples.targets[index, :n]
            batch["loss_mask"][r, span] = examples.loss_mask[index, :n]
            batch["positions"][r, span] = np.arange(n)
            batch["segments"][r, span] = segment
            start += n
    return batch


class PackedOrder:
    """Maps an optimizer step to the packed rows it trains on (see the module docstring)."""

    def __init__(self, data_hash: str, seed: int, lengths: np.ndarray, row_len: int, rows_per_step: int):
        self.data_hash, self.seed, self.lengths = data_hash, seed, lengths
        self.row_len, self.rows_per_step = row_len, rows_per_step
        self._rows: dict[int, list[list[int]]] = {}
        self._counts: list[int] = []  # rows in each epoch packed so far

    def epoch_rows(self, epoch: int) -> list[list[int]]:
        if epoch not in self._rows:
            if len(self._rows) > 2:  # a run only ever looks at the current and next epoch
                self._rows.pop(min(self._rows))
            order = epoch_permutation(self.data_hash, self.seed, epoch, len(self.lengths))
            self._rows[epoch] = pack_rows(order, self.lengths, self.row_len)
        return self._rows[epoch]

    def _epoch_count(self, epoch: int) -> int:
        while len(self._counts) <= epoch:
            self._counts.append(len(self.epoch_rows(len(self._counts))))
        return self._counts[epoch]

    def _locate(self, position: int) -> tuple[int, int]:
        """(epoch, row within it) of the `position`-th row of the whole run."""
        epoch = 0
        while position >= self._epoch_count(epoch):
            position -= self._epoch_count(epoch)
            epoch += 1
        return epoch, position

    def rows_for_step(self, step: int) -> list[list[int]]:
        start = step * self.rows_per_step
        located = [self._locate(p) for p in range(start, start + self.rows_per_step)]
        return [self.epoch_rows(epoch)[row] for epoch, row in located]

    def epoch_of_step(self, step: int) -> float:
        """Epochs completed after `step` steps, counted in rows of the epoch in progress."""
        if step == 0:
            return 0.0
        epoch, row = self._locate(step * self.rows_per_step - 1)
        return epoch + (row + 1) / self._epoch_count(epoch)


def padding_fraction(lengths: np.ndarray, rows: int, row_len: int) -> float:
    """Share of the computed positions that hold no example token."""
    return 1.0 - float(np.sum(lengths)) / (rows * row_len)


class StepBatches:
    """The arrays of each optimizer step, shaped [grad_accum, batch_size, max_seq_len]: plain rows
    of one example each (DataOrder), or packed rows (PackedOrder) when `packed` is set."""

    def __init__(self, examples: ExampleArrays, data_hash: str, seed: int, batch_size: int, grad_accum: int,
                 pad_id: int, packed: bool):
        self.examples, self.grad_accum, self.pad_id = examples, grad_accum, pad_id
        self.row_len = int(examples.inputs.shape[1])
        per_step = batch_size * grad_accum
        self.packed = PackedOrder(data_hash, seed, examples.lengths, self.row_len, per_step) if packed else None
        self.plain = None if packed else DataOrder(data_hash, seed, len(examples), per_step)

    def for_step(self, step: int) -> tuple[dict, int]:
        """The step's arrays and how many examples they hold."""
        if self.packed is None:
            batch, count = self.examples.take(self.plain.indices_for_step(step)), self.plain.examples_per_step
        else:
            rows = self.packed.rows_for_step(step)
            batch, count = packed_rows(self.examples, rows, self.row_len, self.pad_id), sum(map(len, rows))
        return {key: value.reshape(self.grad_accum, -1, value.shape[-1]) for key, value in batch.items()}, count

    def epoch_of_step(self, step: int) -> float:
        order = self.plain if self.packed is None else self.packed
        return order.epoch_of_step(step)

    def padding_fraction(self) -> float:
        """Over one epoch: padding positions over all positions the steps compute."""
        rows = len(self.examples) if self.packed is None else len(self.packed.epoch_rows(0))
        return padding_fraction(self.examples.lengths, rows, self.row_len)
