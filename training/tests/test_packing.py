"""Packing: whole examples share a row without seeing each other, and the rows of a step are a pure
function of (data hash, seed, step)."""

import jax.numpy as jnp
import numpy as np
from flax import nnx

from training.data import build_examples
from training.model import create_model, model_config_for
from training.packing import PackedOrder, StepBatches, pack_rows, packed_rows
from training.render import render_tunix_sft
from training.tests.engine_helpers import arithmetic_trace, arithmetic_traces
from training.tokenizers import ByteTokenizer

TOKENIZER = ByteTokenizer()
ROW = 256


def examples_of(traces: list[dict], max_seq_len: int = ROW):
    rows = [render_tunix_sft(trace, str(index)) for index, trace in enumerate(traces)]
    return build_examples(rows, TOKENIZER, max_seq_len)[0]


def logits_of(batch: dict) -> np.ndarray:
    graphdef, params = nnx.split(create_model(model_config_for("tiny"), seed=3))
    model = nnx.merge(graphdef, params)
    return np.asarray(model(jnp.asarray(batch["inputs"]), positions=jnp.asarray(batch["positions"]),
                            segments=jnp.asarray(batch["segments"])))


def test_a_packed_example_never_attends_to_another():
    examples = examples_of([arithmetic_trace(12, 30), arithmetic_trace(7, 5)])
    first, second = int(examples.lengths[0]), int(examples.lengths[1])
    batch = packed_rows(examples, [[0, 1]], ROW, TOKENIZER.pad_id)
    perturbed = {key: value.copy() for key, value in batch.items()}
    perturbed["inputs"][0, :first] = (perturbed["inputs"][0, :first] + 7) % 256  # scramble the first example

    before, after = logits_of(batch), logits_of(perturbed)
    span = slice(first, first + second)
    np.testing.assert_array_equal(before[0, span], after[0, span])
    assert not np.array_equal(before[0, :first], after[0, :first])


def test_a_packed_example_computes_what_it_would_alone_in_its_row():
    examples = examples_of([arithmetic_trace(12, 30), arithmetic_trace(7, 5)])
    first, second = int(examples.lengths[0]), int(examples.lengths[1])
    packed = logits_of(packed_rows(examples, [[0, 1]], ROW, TOKENIZER.pad_id))
    alone = logits_of(packed_rows(examples, [[1]], ROW, TOKENIZER.pad_id))
    np.testing.assert_allclose(packed[0, first:first + second], alone[0, :second], rtol=1e-5, atol=1e-5)


def test_positions_restart_and_segments_number_the_examples():
    examples = examples_of([arithmetic_trace(1, 2), arithmetic_trace(30, 4)])
    first, second = int(examples.lengths[0]), int(examples.lengths[1])
    batch = packed_rows(examples, [[0, 1]], ROW, TOKENIZER.pad_id)
    assert batch["positions"][0, :first].tolist() == list(range(first))
    assert batch["positions"][0, first:first + second].tolist() == list(range(second))
    assert set(batch["segments"][0, :first].tolist()) == {1} and set(batch["segments"][0, first:first + second]) == {2}
    assert not batch["segments"][0, first + second:].any() and not batch["loss_mask"][0, first + second:].any()


def test_the_loss_is_still_on_each_completion_and_its_end_of_turn_only():
    traces = [arithmetic_trace(12, 30), arithmetic_trace(7, 5)]
    batch = packed_rows(examples_of(traces), [[0, 1]], ROW, TOKENIZER.pad_id)
    for segment, trace in enumerate(traces, start=1):
        in_segment = batch["segments"][0] == segment
        targets = batch["targets"][0][in_segment & (batch["loss_mask"][0] > 0)]
        assert TOKENIZER.decode(targets.tolist()) == render_tunix_sft(trace, "t")["completion"]
        assert targets[-1] == TOKENIZER.end_of_turn_id


def test_rows_hold_whole_examples_and_every_example_once_per_epoch():
    lengths = np.asarray([30, 90, 60, 100, 20, 64, 64, 127], dtype=np.int32)
    rows = pack_rows(np.arange(len(lengths)), lengths, ROW)
    assert sorted(index for row in rows for index in row) == list(range(len(lengths)))
    assert all(sum(lengths[row]) <= ROW for row in rows)
    assert len(rows) < len(lengths)


def test_packed_rows_are_a_pure_function_of_hash_seed_and_step():
    lengths = np.asarray([10 + (i * 37) % 90 for i in range(200)], dtype=np.int32)

    def rows(data_hash, seed, steps):
        order = PackedOrder(data_hash, seed, lengths, ROW, rows_per_step=6)
        return [order.rows_for_step(step) for step in steps]

    assert rows("h", 1, range(30)) == rows("h", 1, range(30))
    assert rows("h", 1, [25])[0] == rows("h", 1, range(26))[25]  # a resumed run starts mid-stream
    assert rows("h", 1, [0]) != rows("h", 2, [0]) and rows("h", 1, [0]) != rows("other", 1, [0])


def test_an_epoch_of_packed_steps_visits_every_example_once():
    lengths = np.asarray([10 + (i * 37) % 90 for i in range(200)], dtype=np.int32)
    order = PackedOrder("h", 0, lengths, ROW, rows_per_step=5)
    epoch_rows = order.epoch_rows(0)
    seen = [index for step in range(len(epoch_rows) // 5) for row in order.rows_for_step(step) for index in row]
    assert len(seen) == len(set(seen)) and len(seen) > 0.9 * len(lengths)
    assert order.epoch_of_step(len(epoch_rows) // 5) <= 1.0 < order.epoch_of_step(len(epoch_rows) // 5 + 1)


def test_packing_cuts_the_padding_a_step_computes():
    examples = examples_of(arithmetic_traces(300, seed=5))
    plain = StepBatches(examples, "h", 0, 8, 1, TOKENIZER.pad_id, packed=False)
    packed = StepBatches(examples, "h", 0, 8, 1, TOKENIZER.pad_id, packed=True)
    assert plain.padding_fraction() > 0.5 > 0.1 > packed.padding_fraction()
    batch, count = packed.for_step(0)
    assert batch["inputs"].shape == (1, 8, 256) and count > 8
