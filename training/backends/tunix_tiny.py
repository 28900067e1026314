"""The `gemma3-tiny` model folder: random weights + a small SentencePiece tokenizer, made locally.

It is written in exactly the layout of a downloaded Gemma checkpoint (Hugging Face tensor names,
`tokenizer.model`, `config.json`) and then loaded through the same Tunix safetensors loader as the
real presets, so tests, the CPU smoke run and the notebook exercise the real loading code without any
download. Everything is a pure function of `seed`.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import sentencepiece as spm
from safetensors.numpy import save_file

from training.backends.tunix_models import PRESETS, TOKENIZER_FILE, expected_hf_shapes
from training.render import END_OF_TURN, START_OF_TURN, render_tunix_sft

TINY_PRESET = "gemma3-tiny"
WEIGHTS_FILE = "model.safetensors"
_WORDS = (
    "apples boxes train river card deck high duel win lose tie total each more fewer left right "
    "the a of is and what how many has have gives buys sells check sum difference product answer"
).split()


def tokenizer_corpus(seed: int, lines: int = 1500) -> list[str]:
    """Chat-formatted arithmetic traces plus word salad, rendered by the project's one renderer."""
    rng = random.Random(seed)
    corpus = []
    for n in range(lines):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 10)))
        trace = {
            "prompt": f"{words.capitalize()}? What is {a} + {b}?",
            "steps": [{"i": 0, "type": "compute", "content": f"{a} + {b} = {a + b}"},
                      {"i": 1, "type": "verify", "content": f"{a + b} - {b} = {a}"}],
            "final_answer": str(a + b),
        }
        corpus.append(render_tunix_sft(trace, str(n))["text"])
    return corpus


def train_tiny_tokenizer(path: str | Path, seed: int = 0, vocab_size: int = 512) -> None:
    """Gemma's id layout (pad 0, eos 1, bos 2, unk 3), chat markers as user-defined pieces, and
    byte fallback + identity normalisation so any text (newlines included) round-trips."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(tokenizer_corpus(seed)),
        model_writer=model,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        user_defined_symbols=[START_OF_TURN, END_OF_TURN],
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=False,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    Path(path).write_bytes(model.getvalue())


def random_hf_weights(preset: str, seed: int) -> dict[str, np.ndarray]:
    """Every tensor `preset` needs, Hugging Face names and layouts, float32; Gemma's RMSNorm scales
    by (1 + w), so norms start at 0; matrices are N(0, 0.02)."""
    rng = np.random.default_rng(seed)
    vocab = PRESETS[preset].make_config().num_embed
    weights = {}
    for name, want in expected_hf_shapes(PRESETS[preset]).items():
        shape = tuple(vocab if dim is None else dim for dim in want)  # None: a free vocabulary size
        value = np.zeros(shape) if name.endswith("norm.weight") else rng.normal(0.0, 0.02, shape)
        weights[name] = value.astype(np.float32)
    return weights


def _hf_config() -> dict:
    cfg = PRESETS[TINY_PRESET].make_config()
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "num_hidden_layers": cfg.num_layers,
        "hidden_size": cfg.embed_dim,
        "intermediate_size": cfg.hidden_dim,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "vocab_size": cfg.num_embed,
        "sliding_window": cfg.sliding_window_size,
        "torch_dtype": "float32",
    }


def write_tiny_model_dir(path: str | Path, seed: int = 0) -> Path:
    """Create (or overwrite) a complete gemma3-tiny model folder at `path` and return it."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    train_tiny_tokenizer(root / TOKENIZER_FILE, seed)
    save_file(random_hf_weights(TINY_PRESET, seed), str(root / WEIGHTS_FILE), metadata={"format": "pt"})
    (root / "config.json").write_text(json.dumps(_hf_config(), indent=2) + "\n", encoding="utf-8")
    return root
