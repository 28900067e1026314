"""The tunix backend on CPU with the gemma3-tiny preset: random Gemma 3 weights written as Hugging Face
safetensors, loaded back through Tunix's loader, trained with Tunix's PeftTrainer, sampled with
Tunix's Sampler. Skipped only when the optional google-tunix extra is not installed."""

from __future__ import annotations

import json
import math
import shutil
import struct

import numpy as np
import pytest

pytest.importorskip("tunix")
pytest.importorskip("qwix")

import jax  # noqa: E402
from flax import nnx  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from training.backends import tunix_backend, tunix_models, tunix_tiny  # noqa: E402
from training.backends.tunix_generate import load_for_generation  # noqa: E402
from training.backends.tunix_models import ModelDirError, validate_model_dir  # noqa: E402
from training.backends.tunix_tokenizer import SentencePieceTokenizer, TokenizerError  # noqa: E402
from training.hooks import CollectingHooks  # noqa: E402
from training.render import END_OF_TURN  # noqa: E402
from training.run_files import read_metrics  # noqa: E402
from training.tests import tunix_helpers  # noqa: E402

PEAK_FLOPS = 1e11  # given, so tests do not spend time measuring the CPU
STEPS = 8


_rows = tunix_helpers.arithmetic_rows


def _config(model_dir, **overrides) -> dict:
    config = {
        "backend": "tunix", "model": "gemma3-tiny", "model_dir": str(model_dir) if model_dir else None,
        "max_steps": STEPS, "batch_size": 2, "grad_accum": 2, "learning_rate": 3e-3, "warmup_steps": 2,
        "max_seq_len": 48, "checkpoint_every": 4, "eval_every": 4, "seed": 0,
    }
    return {**config, **overrides}


def _train(config: dict, out_dir, hooks=None):
    return tunix_backend.train(config, _rows(), out_dir, hooks or CollectingHooks(), "data-hash-1",
                               peak_flops=PEAK_FLOPS)


def _params(model, selector=nnx.Param) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(nnx.state(model, selector))]


def _lora_b_params(model) -> list[np.ndarray]:
    leaves = jax.tree_util.tree_leaves_with_path(nnx.state(model, nnx.LoRAParam))
    return [np.asarray(leaf) for path, leaf in leaves if "lora_b" in jax.tree_util.keystr(path)]


BASE_ONLY = nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam))  # LoRAParam is a subclass of Param


@pytest.fixture(scope="module", autouse=True)
def fast_compilation(tmp_path_factory):
    with tunix_helpers.fast_compilation(str(tmp_path_factory.mktemp("jax_cache"))):
        yield


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A models folder holding one Gemma folder: runs record it by name and later loads find it there."""
    models = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNIXRT_MODELS_DIR", str(models))
        yield tunix_tiny.write_tiny_model_dir(models / "gemma3_tiny", seed=0)


@pytest.fixture(scope="module")
def full_run(tiny_dir, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("full_run")
    hooks = CollectingHooks()
    return _train(_config(tiny_dir), out_dir, hooks), hooks, out_dir


# --- tokenizer and examples -------------------------------------------------------------------


def test_tokenizer_keeps_chat_markers_as_single_ids_and_pad_apart_from_eos(tiny_dir):
    tokenizer = SentencePieceTokenizer(tiny_dir / "tokenizer.model")
    assert tokenizer.pad_id != tokenizer.eos_id
    assert tokenizer.encode(END_OF_TURN) == [tokenizer.end_of_turn_id]
    text = _rows(1)[0]["text"]
    assert tokenizer.decode(tokenizer.encode(text)) == text  # newlines and markers survive


def test_tokenizer_without_chat_markers_is_refused(tmp_path):
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tunix_tiny.tokenizer_corpus(0, lines=200)),
        model_prefix=str(tmp_path / "plain"), vocab_size=300, hard_vocab_limit=False,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, minloglevel=2,
    )
    with pytest.raises(TokenizerError, match="<start_of_turn>"):
        SentencePieceTokenizer(tmp_path / "plain.model")


def test_examples_start_with_bos_and_train_only_the_completion(tiny_dir):
    tokenizer = SentencePieceTokenizer(tiny_dir / "tokenizer.model")
    row = _rows(1)[0]
    examples, stats = tunix_backend.build_tunix_examples([row], tokenizer, 48)
    inputs, targets, mask = examples.inputs[0], examples.targets[0], examples.loss_mask[0]
    assert inputs.shape == (48,) and inputs[0] == tokenizer.bos_id
    real = inputs != tokenizer.pad_id
    assert np.array_equal(targets[:-1][real[1:]], inputs[1:][real[1:]])  # targets are inputs shifted by one
    trained = targets[mask == 1]
    assert tokenizer.decode(trained) == row["completion"]
    assert trained[-1] == tokenizer.end_of_turn_id
    assert stats["examples"] == 1 and stats["bos_prepended"]


# --- model folders ------------------------------------------------------------------------------


def test_tiny_weights_load_back_through_tunix_safetensors_loader(tiny_dir):
    written = tunix_tiny.random_hf_weights("gemma3-tiny", seed=0)
    model = tunix_models.load_model(tiny_dir, "gemma3-tiny")
    cfg = model.config
    layer = model.layers[1]
    np.testing.assert_array_equal(np.asarray(model.embedder.input_embedding[...]),
                                  written["model.embed_tokens.weight"])
    np.testing.assert_array_equal(np.asarray(layer.mlp.gate_proj.kernel[...]),
                                  written["model.layers.1.mlp.gate_proj.weight"].T)
    q_proj = written["model.layers.1.self_attn.q_proj.weight"]  # [heads * head_dim, embed]
    expected_q = q_proj.reshape(cfg.num_heads, cfg.head_dim, cfg.embed_dim).transpose(0, 2, 1)
    np.testing.assert_array_equal(np.asarray(layer.attn.q_einsum.w[...]), expected_q)


def test_gemma2_key_names_and_shapes_match_tunix_gemma2_loader(tiny_dir, tmp_path, monkeypatch):
    """gemma2-2b cannot be downloaded in tests; the same key table at toy size must load."""
    from tunix.models.gemma import model as gemma2_lib

    def toy_gemma2():
        return gemma2_lib.ModelConfig(
            num_layers=2, num_embed=512, embed_dim=32, hidden_dim=64, num_heads=2, head_dim=16,
            num_kv_heads=1, final_logit_softcap=30.0, use_post_attn_norm=True, use_post_ffw_norm=True,
            attention_types=(gemma2_lib.AttentionType.LOCAL_SLIDING, gemma2_lib.AttentionType.GLOBAL),
            attn_logits_soft_cap=50.0, sliding_window_size=16,
        )

    preset = tunix_models.Preset("gemma2-toy", "gemma2", toy_gemma2, exact_vocab=False)
    monkeypatch.setitem(tunix_models.PRESETS, "gemma2-toy", preset)
    save_file(tunix_tiny.random_hf_weights("gemma2-toy", seed=1), str(tmp_path / "model.safetensors"))
    shutil.copy(tiny_dir / "tokenizer.model", tmp_path / "tokenizer.model")
    validate_model_dir(tmp_path, "gemma2-toy")
    model = tunix_models.load_model(tmp_path, "gemma2-toy")
    assert type(model).__name__ == "Gemma" and model.num_layers == 2
    tokens = np.array([[2, 10, 11, 12]], dtype=np.int32)
    positions = np.arange(4, dtype=np.int32)[None]
    mask = np.tril(np.ones((1, 4, 4), dtype=bool))
    logits, _ = model(tokens, positions, None, mask)
    assert logits.shape == (1, 4, 512) and np.isfinite(np.asarray(logits)).all()
    with_lora = tunix_models.apply_lora(model, rank=2, alpha=4.0, seed=0)
    assert len(_lora_b_params(with_lora)) == 12  # q, kv, o, gate, up, down in both layers
    np.testing.assert_allclose(np.asarray(with_lora(tokens, positions, None, mask)[0]), np.asarray(logits),
                               rtol=1e-6)  # B starts at zero: adapters change nothing until trained


def _copy_tiny(tiny_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_dir, target)
    return target


def _break_nothing(root):
    return root


def _missing_folder(root):
    return root / "does-not-exist"


def _no_tokenizer(root):
    (root / "tokenizer.model").unlink()
    return root


def _no_safetensors(root):
    (root / "model.safetensors").unlink()
    return root


def _unreadable_config(root):
    (root / "config.json").write_text("{not json", encoding="utf-8")
    return root


def _corrupt_weights(root):
    (root / "model.safetensors").write_bytes(struct.pack("<Q", 50) + b"garbage")
    return root


def _wrong_shape(root):
    weights = tunix_tiny.random_hf_weights("gemma3-tiny", seed=0)
    weights["model.layers.0.mlp.up_proj.weight"] = np.zeros((7, 64), np.float32)
    save_file(weights, str(root / "model.safetensors"))
    return root


def _mixed_dtypes(root):
    weights = tunix_tiny.random_hf_weights("gemma3-tiny", seed=0)
    weights["model.norm.weight"] = weights["model.norm.weight"].astype(np.float16)
    save_file(weights, str(root / "model.safetensors"))
    return root


@pytest.mark.parametrize(
    ("breakage", "preset", "message"),
    [
        (_missing_folder, "gemma3-tiny", "does not exist"),
        (_no_tokenizer, "gemma3-tiny", "has no tokenizer.model"),
        (_no_safetensors, "gemma3-tiny", r"has no \*\.safetensors"),
        (_unreadable_config, "gemma3-tiny", "config.json.*not readable JSON"),
        (_corrupt_weights, "gemma3-tiny", "model.safetensors.*not readable safetensors"),
        (_wrong_shape, "gemma3-tiny", r"up_proj\.weight has shape \[7, 64\]"),
        (_mixed_dtypes, "gemma3-tiny", "mixes dtypes"),
        (_break_nothing, "gemma3-1b", "num_hidden_layers=2 but preset gemma3-1b has 26"),
        (_break_nothing, "gemma2-2b", r"embed_tokens\.weight has shape \[512, 64\].*expects \['any', 2304\]"),
    ],
)
def test_bad_model_dir_raises_model_dir_error_naming_the_problem(tiny_dir, tmp_path, breakage, preset,
                                                                 message):
    root = breakage(_copy_tiny(tiny_dir, tmp_path))
    with pytest.raises(ModelDirError, match=message):
        validate_model_dir(root, preset)


def test_training_refuses_a_bad_model_dir_before_it_starts(tmp_path):
    out_dir = tmp_path / "run"
    with pytest.raises(ModelDirError, match="does not exist"):
        _train(_config(tmp_path / "missing"), out_dir)
    assert not (out_dir / "metrics.jsonl").exists() and not (out_dir / "checkpoints").exists()


# --- full fine-tuning through PeftTrainer --------------------------------------------------------


def test_full_finetune_loss_is_finite_and_decreases(full_run):
    result, hooks, _ = full_run
    losses = [step["loss"] for step in hooks.steps]
    assert result.status == "completed" and result.steps_completed == STEPS
    assert len(losses) == STEPS and all(math.isfinite(loss) for loss in losses)
    assert np.mean(losses[-2:]) < losses[0] - 0.5


def test_metrics_jsonl_has_one_line_per_step_with_lr_grad_norm_and_throughput(full_run):
    _, hooks, out_dir = full_run
    lines = read_metrics(out_dir / "metrics.jsonl")
    assert [line["step"] for line in lines] == list(range(1, STEPS + 1))
    assert lines == hooks.steps
    for line in lines:
        assert line["lr"] > 0 and line["grad_norm"] > 0 and line["tokens_per_s"] > 0
    assert lines[0]["lr"] < lines[1]["lr"]  # warmup
    assert {line["step"] for line in lines if "eval_loss" in line} == {4, 8}


def test_checkpoints_are_written_every_checkpoint_every_steps_and_at_the_end(full_run):
    result, _, out_dir = full_run
    steps = sorted(int(p.name) for p in (out_dir / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [4, 8]
    assert (out_dir / "checkpoints" / "8" / "model_params").is_dir()
    assert (out_dir / "checkpoints" / "8" / "optimizer_state").is_dir()
    assert result.checkpoint_dir == str((out_dir / "checkpoints").resolve())


def test_manifest_records_backend_config_data_hash_device_and_timings(full_run):
    result, _, out_dir = full_run
    manifest = json.loads((out_dir / "run_manifest.json").read_text())
    assert manifest == result.manifest
    assert manifest["backend"] == "tunix" and manifest["status"] == "completed"
    assert manifest["data"]["sha256"] == "data-hash-1" and manifest["data"]["examples"] == 24
    assert manifest["config"]["model"] == "gemma3-tiny" and manifest["config_hash"]
    assert manifest["device"]["platform"] == "cpu"
    assert manifest["model"]["trainable_param_count"] == manifest["model"]["param_count"] > 0
    assert manifest["timings"]["steps_this_process"] == STEPS
    assert manifest["final_metrics"]["loss"] == result.final_loss
    assert manifest["throughput"]["mfu"]["peak_flops_source"] == "given"


def test_generation_restores_the_checkpoint_and_stops_at_end_of_turn(full_run, tiny_dir):
    _, _, out_dir = full_run
    model, tokenizer = load_for_generation(out_dir)
    base = tunix_models.load_model(tiny_dir, "gemma3-tiny")
    assert not all(np.array_equal(a, b) for a, b in zip(_params(model), _params(base), strict=True))
    prompts = [row["prompt"] for row in _rows(3)] + ["What is 3 + 4?"]  # rendered, and one raw question
    texts = tunix_backend.generate(out_dir, prompts, max_new_tokens=12)
    assert len(texts) == 4 and all(isinstance(text, str) for text in texts)
    details = tunix_backend.generate_details(out_dir, prompts, max_new_tokens=12)
    assert [d.text for d in details] == texts  # greedy is deterministic
    for detail in details:
        assert tokenizer.end_of_turn_id not in detail.token_ids and END_OF_TURN not in detail.text
        assert tokenizer.decode(detail.token_ids) == detail.text
        assert detail.stopped == (len(detail.token_ids) < 12)
    sampled = tunix_backend.generate(out_dir, prompts[:1], max_new_tokens=12, temperature=1.0, seed=3)
    assert len(sampled) == 1


def test_generation_from_a_bare_model_folder_infers_its_preset(tiny_dir):
    assert tunix_models.infer_preset(tiny_dir) == "gemma3-tiny"
    texts = tunix_backend.generate(tiny_dir, ["What is 3 + 4?"], max_new_tokens=12)
    assert len(texts) == 1 and isinstance(texts[0], str)


def test_generation_reuses_the_loaded_model_until_a_new_checkpoint_appears(full_run, monkeypatch):
    from training.backends import tunix_generate

    _, _, out_dir = full_run
    loads = []
    real_load = tunix_generate.load_for_generation
    monkeypatch.setattr(tunix_generate, "load_for_generation",
                        lambda path, *args, **kwargs: loads.append(path) or real_load(path, *args, **kwargs))
    monkeypatch.setattr(tunix_generate, "_LOADED", {})
    for _ in range(3):
        tunix_backend.generate(out_dir, ["What is 2 + 2?"], max_new_tokens=4)
    assert len(loads) == 1
    shutil.copytree(out_dir / "checkpoints" / "8", out_dir / "checkpoints" / "9")  # a newer checkpoint
    try:
        tunix_backend.generate(out_dir, ["What is 2 + 2?"], max_new_tokens=4)
    finally:
        shutil.rmtree(out_dir / "checkpoints" / "9")
    assert len(loads) == 2


def test_resume_after_a_cancel_reproduces_the_uninterrupted_run(full_run, tiny_dir, tmp_path):
    _, _, reference_dir = full_run
    out_dir = tmp_path / "resumed"
    config = _config(tiny_dir, eval_every=0)  # eval never touches the weights; skipping it saves compiles
    first = _train(config, out_dir, CollectingHooks(cancel_after_steps=2))
    assert first.status == "cancelled" and 2 <= first.steps_completed < STEPS
    assert (out_dir / "checkpoints" / str(first.steps_completed)).is_dir()
    hooks = CollectingHooks()
    second = _train(config, out_dir, hooks)
    assert second.status == "completed" and second.manifest["resumed_from_step"] == first.steps_completed
    assert any("resumed from checkpoint" in line for line in hooks.logs)
    reference = read_metrics(reference_dir / "metrics.jsonl")
    resumed = read_metrics(out_dir / "metrics.jsonl")
    assert [line["step"] for line in resumed] == list(range(1, STEPS + 1))
    np.testing.assert_allclose([x["loss"] for x in resumed], [x["loss"] for x in reference], rtol=1e-6)
    for a, b in zip(_params(load_for_generation(out_dir)[0]), _params(load_for_generation(reference_dir)[0]),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_engine_hands_tunix_configs_to_this_backend(tiny_dir, tmp_path):
    from training.engine import train

    data_path = tmp_path / "train.jsonl"
    data_path.write_text("".join(json.dumps(row) + "\n" for row in _rows()), encoding="utf-8")
    config = _config(tiny_dir, eval_every=0)  # the resume test's programs: served from the compile cache
    result = train(config, data_path, tmp_path / "run", peak_flops=PEAK_FLOPS)
    assert result.status == "completed" and result.steps_completed == STEPS
    assert result.manifest["backend"] == "tunix" and len(result.manifest["data"]["sha256"]) == 64


# --- LoRA through qwix ----------------------------------------------------------------------------


def test_lora_run_trains_only_adapter_params(tiny_dir, tmp_path):
    out_dir = tmp_path / "lora"
    config = _config(None, lora={"rank": 4, "alpha": 8.0}, max_steps=4, batch_size=4, grad_accum=1,
                     checkpoint_every=0, eval_every=0)
    result = _train(config, out_dir)  # no model_dir: gemma3-tiny writes its own random base (seed 0)
    assert result.status == "completed" and result.steps_completed == 4
    assert (out_dir / "base_model" / "model.safetensors").exists()
    model_info = result.manifest["model"]
    assert 0 < model_info["trainable_param_count"] < model_info["param_count"] / 5
    assert sorted(p.name for p in (out_dir / "checkpoints").iterdir() if p.name.isdigit()) == ["4"]
    model, _ = load_for_generation(out_dir)
    base = tunix_models.load_model(tiny_dir, "gemma3-tiny")
    for trained, original in zip(_params(model, BASE_ONLY), _params(base), strict=True):
        np.testing.assert_array_equal(trained, original)  # the frozen base is bit-identical
    lora_b = _lora_b_params(model)
    assert len(lora_b) == 12 and all(np.abs(b).sum() > 0 for b in lora_b)  # B starts at zero: it was trained
    losses = [line["loss"] for line in read_metrics(out_dir / "metrics.jsonl")]
    assert all(math.isfinite(loss) for loss in losses) and losses[-1] != losses[0]
    texts = tunix_backend.generate(out_dir, ["What is 1 + 2?"], max_new_tokens=8)
    assert len(texts) == 1 and isinstance(texts[0], str)
