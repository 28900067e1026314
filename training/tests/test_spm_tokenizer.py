"""The learned SentencePiece tokenizer: exact round trips, one digit per token, markers as one id; and its
spm-letters-v1 encoding, which spells quoted words one character per id."""

import re

import pytest

from training.generators import GENERATORS, generate, vocab
from training.render import END_OF_TURN, render_prompt, render_tunix_sft
from training.spm_tokenizer import MARKERS, SpmLettersTokenizer, SpmTokenizer, train_spm_model


def export_texts(traces: list[dict]) -> list[str]:
    rows = [render_tunix_sft(trace, str(index)) for index, trace in enumerate(traces)]
    return [text for row in rows for text in (row["prompt"], row["completion"])]


@pytest.fixture(scope="module")
def training_texts():
    return export_texts(generate("dev-reasoning-v2", count=3000, seed=4).items)


@pytest.fixture(scope="module")
def model_bytes(training_texts):
    return train_spm_model(training_texts, 1024)


@pytest.fixture(scope="module")
def tokenizer(model_bytes):
    return SpmTokenizer(model_bytes)


@pytest.fixture(scope="module")
def letters(model_bytes):
    return SpmLettersTokenizer(model_bytes)


def every_generator_text() -> list[str]:
    texts = []
    for name in GENERATORS:
        for item in generate(name).items:
            texts += [item["prompt"], item.get("final_answer") or item["expected_answer"]]
            texts += [step["content"] for step in item.get("steps", [])]
    return texts


@pytest.mark.parametrize("encoding", ["tokenizer", "letters"])
def test_every_character_of_the_generators_and_of_eval_v1_round_trips(encoding, request):
    tokenizer = request.getfixturevalue(encoding)
    texts = every_generator_text()
    characters = sorted(set("".join(texts)) | set("".join(vocab.WORDS + vocab.NAMES + vocab.SYLLABLES)))
    assert len(characters) > 60
    quoted = [f"'{text}'" for text in ("".join(characters), *characters)]
    for text in [*texts, "".join(characters), *characters, *quoted, "it's 'x' and 'y'z' don't ''"]:
        assert tokenizer.decode(tokenizer.encode(text)) == text, text


def test_eval_prompts_and_expected_answers_round_trip_in_their_chat_form(tokenizer):
    for item in generate("eval-v1").items:
        text = render_prompt(item["prompt"]) + item["expected_answer"] + END_OF_TURN
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_text_it_never_saw_still_round_trips_byte_for_byte(tokenizer):
    for text in ("Über 12 × 3 = 36 ✓", "  two  spaces\n\n\tand a tab ", "emoji 🙂 and 中文"):
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_digits_are_split_one_per_token(tokenizer, training_texts):
    pieces = {piece for text in training_texts[:2000] for piece in tokenizer.processor.encode(text, out_type=str)}
    with_digits = [piece for piece in pieces if re.search(r"\d", piece)]
    assert with_digits and all(len(re.findall(r"\d", piece)) == 1 for piece in with_digits)
    assert len(tokenizer.encode("1234567")) == 7 and len(tokenizer.encode(" 90210")) == 5


def test_chat_and_tag_markers_are_single_ids(tokenizer):
    for marker in MARKERS:
        ids = tokenizer.encode(marker)
        assert len(ids) == 1 and tokenizer.decode(ids) == marker
    completion = "<reasoning>2 + 2 = 4</reasoning><answer>4</answer><end_of_turn>"
    ids = tokenizer.encode(completion)
    assert ids[0] == tokenizer.encode("<reasoning>")[0] and ids[-1] == tokenizer.end_of_turn_id


def test_pad_differs_from_eos_and_both_vanish_when_decoding(tokenizer):
    assert tokenizer.pad_id != tokenizer.eos_id
    ids = [tokenizer.pad_id, *tokenizer.encode("hi"), tokenizer.eos_id]
    assert tokenizer.decode(ids) == "hi"


def test_it_compresses_the_export_several_times_over_bytes(tokenizer, training_texts):
    sample = training_texts[:1000]
    tokens = sum(len(tokenizer.encode(text)) for text in sample)
    assert sum(len(text.encode("utf-8")) for text in sample) > 2.5 * tokens


def test_the_same_export_trains_the_same_model_bytes(training_texts):
    sample = training_texts[:600]
    assert train_spm_model(sample, 512) == train_spm_model(sample, 512)


def test_the_letters_encoding_spells_a_quoted_word_and_leaves_the_rest_as_pieces(tokenizer, letters):
    prompt = "How many times does the letter 'a' appear in 'banana'?"
    word = prompt.index("banana")
    ids = letters.encode(prompt)
    head = letters.encode(prompt[:word])
    assert ids[:len(head)] == head == tokenizer.encode(prompt[:word])
    assert letters.processor.id_to_piece(ids[len(head):len(head) + 6]) == list("banana")
    assert ids[len(head) + 6:] == tokenizer.encode(prompt[word + 6:])
    # Unquoted text is encoded as spm-v1 encodes it, and a sentence's apostrophe opens no quote.
    plain = "The answer is 42, it's plain. Joined: banana"
    assert letters.encode(plain) == tokenizer.encode(plain)
    assert len(letters.encode("'banana'")) == 8 > len(tokenizer.encode("'banana'"))


def test_a_letters_run_is_recorded_and_reloaded_with_its_own_encoding(tmp_path, training_texts):
    from training.tokenizers import load_run_tokenizer, run_tokenizer, tokenizer_kind

    rows = [{"prompt": text, "completion": ""} for text in training_texts[:600]]
    made = run_tokenizer("spm_letters", 512, rows, tmp_path, resuming=False)
    assert (made.name, tokenizer_kind(made.name), tokenizer_kind("spm-v1")) == ("spm-letters-v1", "spm_letters", "spm")
    resumed = run_tokenizer("spm_letters", 512, [], tmp_path, resuming=True)
    run_config = {"model": {"tokenizer": made.name}, "tokenizer_sha256": made.sha256}
    loaded = load_run_tokenizer(tmp_path, run_config)
    assert type(made) is type(resumed) is type(loaded) is SpmLettersTokenizer
    assert resumed.sha256 == loaded.sha256 == made.sha256
    # The same file recorded under the older name reads as spm-v1: an old run keeps its encoding.
    old = load_run_tokenizer(tmp_path, {**run_config, "model": {"tokenizer": "spm-v1"}})
    assert type(old) is SpmTokenizer
    spelled = loaded.encode("'letters'")
    assert old.encode("'letters'") != spelled and old.decode(spelled) == "'letters'"
