import numpy as np

from training.data import DataOrder, build_example, build_examples, epoch_permutation, example_tokens
from training.render import END_OF_TURN, render_tunix_sft
from training.tests.engine_helpers import arithmetic_trace, arithmetic_traces
from training.tokenizers import ByteTokenizer

TOKENIZER = ByteTokenizer()


def sft_row(trace: dict) -> dict:
    return render_tunix_sft(trace, "t")


def test_pad_is_not_eos_and_chat_markers_are_single_tokens():
    assert TOKENIZER.pad_id != TOKENIZER.eos_id
    ids = TOKENIZER.encode(f"<start_of_turn>user\nhi{END_OF_TURN}")
    assert ids[0] == TOKENIZER.start_of_turn_id and ids[-1] == TOKENIZER.end_of_turn_id
    assert ids.count(TOKENIZER.end_of_turn_id) == 1 and len(ids) == 1 + len("user\nhi") + 1


def test_byte_tokenizer_round_trips_unicode_and_markers():
    text = "<start_of_turn>user\nÜber 12 × 3 = 36 ✓<end_of_turn>\n"
    assert TOKENIZER.decode(TOKENIZER.encode(text)) == text
    assert TOKENIZER.decode([TOKENIZER.pad_id, 104, 105, TOKENIZER.eos_id]) == "hi"


def test_loss_is_on_the_completion_and_its_end_of_turn_only():
    row = sft_row(arithmetic_trace(12, 30))
    example = build_example(TOKENIZER, row["prompt"], row["completion"], max_seq_len=128)
    mask = example["loss_mask"].astype(bool)
    assert TOKENIZER.decode(example["targets"][mask].tolist()) == row["completion"]
    assert example["targets"][mask][-1] == TOKENIZER.end_of_turn_id
    prompt_len = len(TOKENIZER.encode(row["prompt"]))
    assert not mask[: prompt_len - 1].any()  # targets 0..prompt_len-2 are prompt tokens
    assert TOKENIZER.decode(example["inputs"][:prompt_len].tolist()) == row["prompt"]


def test_padding_uses_pad_and_is_masked():
    row = sft_row(arithmetic_trace(1, 2))
    example = build_example(TOKENIZER, row["prompt"], row["completion"], max_seq_len=128)
    tokens, _ = example_tokens(TOKENIZER, row["prompt"], row["completion"])
    real = len(tokens) - 1
    assert example["inputs"].shape == (128,) and example["targets"].shape == (128,)
    assert (example["inputs"][real:] == TOKENIZER.pad_id).all()
    assert (example["targets"][real:] == TOKENIZER.pad_id).all()
    assert not example["loss_mask"][real:].any()
    assert TOKENIZER.eos_id not in example["targets"].tolist()  # end-of-turn already ends it


def test_eos_is_appended_when_the_completion_has_no_stop_token():
    tokens, prompt_len = example_tokens(TOKENIZER, "Q:", "A")
    assert tokens[prompt_len:] == [ord("A"), TOKENIZER.eos_id]


def test_overlong_examples_are_dropped_and_counted():
    rows = [sft_row(arithmetic_trace(1, 2)), {"prompt": "x" * 500, "completion": "y"}]
    arrays, stats = build_examples(rows, TOKENIZER, max_seq_len=128)
    assert len(arrays) == 1 and arrays.row_index.tolist() == [0]
    assert stats["dropped_too_long"] == 1 and stats["overlong_rule"] == "drop"


def test_an_example_of_exactly_max_seq_len_plus_one_tokens_fits():
    tokens, _ = example_tokens(TOKENIZER, "Q", "abc")
    assert build_example(TOKENIZER, "Q", "abc", max_seq_len=len(tokens) - 1) is not None
    assert build_example(TOKENIZER, "Q", "abc", max_seq_len=len(tokens) - 2) is None


def test_data_order_is_a_pure_function_of_hash_seed_and_step():
    a = DataOrder("hash-a", seed=1, num_examples=10, examples_per_step=4)
    b = DataOrder("hash-a", seed=1, num_examples=10, examples_per_step=4)
    assert [a.indices_for_step(s).tolist() for s in range(6)] == [b.indices_for_step(s).tolist() for s in (
        0, 1, 2, 3, 4, 5)]
    assert b.indices_for_step(4).tolist() == DataOrder("hash-a", 1, 10, 4).indices_for_step(4).tolist()
    assert a.indices_for_step(0).tolist() != DataOrder("hash-a", 2, 10, 4).indices_for_step(0).tolist()
    assert a.indices_for_step(0).tolist() != DataOrder("hash-b", 1, 10, 4).indices_for_step(0).tolist()


def test_each_epoch_visits_every_example_once_in_a_new_order():
    first, second = epoch_permutation("h", 0, 0, 50), epoch_permutation("h", 0, 1, 50)
    assert sorted(first.tolist()) == list(range(50)) == sorted(second.tolist())
    assert first.tolist() != second.tolist()
    order = DataOrder("h", 0, num_examples=50, examples_per_step=10)
    seen = np.concatenate([order.indices_for_step(s) for s in range(5)])
    assert sorted(seen.tolist()) == list(range(50))


def test_examples_stack_to_fixed_shapes():
    rows = [sft_row(t) for t in arithmetic_traces(5)]
    arrays, stats = build_examples(rows, TOKENIZER, max_seq_len=96)
    assert arrays.inputs.shape == arrays.targets.shape == arrays.loss_mask.shape == (5, 96)
    assert stats["examples"] == 5 and stats["target_tokens"] == int(arrays.loss_mask.sum())
