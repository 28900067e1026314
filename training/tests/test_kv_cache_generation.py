"""KV-cache decoding must agree token for token with re-running the whole model per token."""

import pytest

from training.engine import train
from training.generate import generate, generate_batch, greedy_reference, load_model
from training.render import render_prompt
from training.tests.engine_helpers import arithmetic_traces, tiny_config, write_sft_file

PROMPTS = [render_prompt(p) for p in (
    "What is 3 + 4?", "What is 12 + 30?", "What is 45 + 45? Answer with care, please.", "What is 7 + 19?",
    "Hi", "What is 58 + 9?",
)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("kv")
    data = write_sft_file(root / "data.jsonl", arithmetic_traces(200, seed=1))
    train(tiny_config(max_steps=60), data, root / "run", peak_flops=1e11)
    return load_model(root / "run")


def test_kv_cache_greedy_matches_full_reforward_greedy(trained):
    cached = generate_batch(trained, PROMPTS, max_new_tokens=48)
    reference = greedy_reference(trained, PROMPTS, max_new_tokens=48)
    assert [g.token_ids for g in cached] == [r.token_ids for r in reference]
    assert any(g.stopped for g in cached)


def test_a_prompt_decodes_the_same_alone_and_in_a_padded_batch(trained):
    alone = [generate_batch(trained, [prompt], max_new_tokens=40)[0].token_ids for prompt in PROMPTS[:3]]
    batched = [g.token_ids for g in generate_batch(trained, PROMPTS, max_new_tokens=40)[:3]]
    assert alone == batched


def test_generation_stops_at_end_of_turn_and_hides_it(trained):
    for generation in generate_batch(trained, PROMPTS[:4], max_new_tokens=64):
        if generation.stopped:
            assert generation.token_ids[-1] in (trained.tokenizer.end_of_turn_id, trained.tokenizer.eos_id)
            assert "<end_of_turn>" not in generation.text
            assert generation.text == trained.tokenizer.decode(generation.token_ids[:-1])


def test_temperature_sampling_is_seeded(trained):
    first = [g.token_ids for g in generate(trained, PROMPTS, 32, temperature=1.0, seed=7, batch_size=4)]
    again = [g.token_ids for g in generate(trained, PROMPTS, 32, temperature=1.0, seed=7, batch_size=4)]
    other = [g.token_ids for g in generate(trained, PROMPTS, 32, temperature=1.0, seed=8, batch_size=4)]
    assert first == again and first != other


def test_generate_runs_any_number_of_prompts_in_fixed_batches(trained):
    results = generate(trained, PROMPTS[:5], max_new_tokens=16, batch_size=2)
    assert len(results) == 5
    first_two = generate_batch(trained, PROMPTS[:2], 16)
    assert [r.token_ids for r in results[:2]] == [g.token_ids for g in first_two]


def test_nucleus_keeps_the_most_likely_tokens_up_to_top_p():
    import jax.numpy as jnp
    import numpy as np

    from training.generate import _nucleus

    logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]]))
    kept = np.isfinite(np.asarray(_nucleus(logits, 0.7)))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7, 0.5 + 0.3 reaches it
    assert np.isfinite(np.asarray(_nucleus(logits, 0.5))).tolist() == [[True, False, False, False]]


def test_a_tiny_top_p_samples_what_greedy_picks(trained):
    greedy = [g.token_ids for g in generate_batch(trained, PROMPTS[:3], 24)]
    nucleus = [g.token_ids for g in generate_batch(trained, PROMPTS[:3], 24, temperature=1.5, seed=3, top_p=1e-6)]
    assert nucleus == greedy
    with pytest.raises(ValueError, match="top_p"):
        generate_batch(trained, PROMPTS[:1], 4, top_p=0.0)
