"""Gemma presets, model-folder validation and model construction through Tunix's own loaders.

A model folder is what Hugging Face (and Kaggle's "transformers" variants) ship: `*.safetensors` in
the Hugging Face naming (`model.layers.N.self_attn.q_proj.weight`, ...), `tokenizer.model`, and
optionally `config.json`.
`validate_model_dir` reads only the safetensors headers, so a wrong folder is refused in milliseconds
and before any weights are loaded or any training starts. The expected shapes are derived from Tunix's
own ModelConfig for the preset, the same object the loader builds the model from.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import struct
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx
from tunix.models.gemma import model as gemma2_lib
from tunix.models.gemma import params_safetensors as gemma2_safetensors
from tunix.models.gemma3 import model as gemma3_lib
from tunix.models.gemma3 import params_safetensors as gemma3_safetensors

from training.backends.tunix_tokenizer import SentencePieceTokenizer, TokenizerError

TOKENIZER_FILE = "tokenizer.model"
# qwix matches these module paths; they cover every projection of both Gemma generations.
LORA_MODULE_PATH = ".*q_einsum|.*kv_einsum|.*qkv_einsum|.*attn_vec_einsum|.*gate_proj|.*up_proj|.*down_proj"
_MAX_HEADER_BYTES = 100 * 1024 * 1024
_LAYER_KEY = re.compile(r"model\.layers\.(\d+)\.")
# config.json key -> ModelConfig attribute, compared when the folder has a config.json.
_HF_CONFIG_FIELDS = {
    "num_hidden_layers": "num_layers",
    "hidden_size": "embed_dim",
    "intermediate_size": "hidden_dim",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "head_dim": "head_dim",
}


class ModelDirError(ValueError):
    """The model folder cannot be used with the preset; `problems` lists every reason found."""

    def __init__(self, problems: list[str]):
        super().__init__(" ".join(problems))
        self.problems = problems


# A real Gemma 3 architecture at toy size: q/kv split with one KV head like gemma3-1b, float32.
TINY_GEMMA3 = {"num_layers": 2, "num_embed": 512, "embed_dim": 64, "hidden_dim": 128, "num_heads": 2,
               "head_dim": 16, "num_kv_heads": 1, "sliding_window_size": 64, "param_dtype": "float32"}


def tiny_gemma3_config() -> gemma3_lib.ModelConfig:
    return gemma3_lib.ModelConfig(**{**TINY_GEMMA3, "param_dtype": jnp.dtype(TINY_GEMMA3["param_dtype"])})


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    family: str  # "gemma3" or "gemma2": picks Tunix's model class, loader and key names
    make_config: Callable[[], object]
    # Tunix's Gemma 2 loader resizes the embedding to the checkpoint's vocabulary (256000 rows vs
    # 256128 in its config); the Gemma 3 loader does not, so there the row count must match exactly.
    exact_vocab: bool
    # How Tunix's own code builds the config: a ModelConfig classmethod's name (released Gemmas), else the
    # keyword arguments (the tiny test preset). Written into merged checkpoints (tunix_export).
    factory: str | None = None
    kwargs: dict | None = None


PRESETS = {
    "gemma3-1b": Preset("gemma3-1b", "gemma3", gemma3_lib.ModelConfig.gemma3_1b_it, exact_vocab=True,
                        factory="gemma3_1b_it"),
    "gemma2-2b": Preset("gemma2-2b", "gemma2", gemma2_lib.ModelConfig.gemma2_2b, exact_vocab=False,
                        factory="gemma2_2b"),
    "gemma3-tiny": Preset("gemma3-tiny", "gemma3", tiny_gemma3_config, exact_vocab=True, kwargs=TINY_GEMMA3),
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ModelDirError([f"Unknown tunix model preset {name!r}; choose one of {', '.join(PRESETS)}."])
    return PRESETS[name]


def expected_hf_shapes(preset: Preset) -> dict[str, tuple[int | None, ...]]:
    """Hugging Face tensor name -> shape for the preset; None marks a dimension left to the checkpoint."""
    cfg = preset.make_config()
    d, f, h = cfg.embed_dim, cfg.hidden_dim, cfg.head_dim
    q_rows, kv_rows = cfg.num_heads * h, cfg.num_kv_heads * h
    vocab = cfg.num_embed if preset.exact_vocab else None
    shapes: dict[str, tuple[int | None, ...]] = {
        "model.embed_tokens.weight": (vocab, d),
        "model.norm.weight": (d,),
    }
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (q_rows, d),
            p + "self_attn.k_proj.weight": (kv_rows, d),
            p + "self_attn.v_proj.weight": (kv_rows, d),
            p + "self_attn.o_proj.weight": (d, q_rows),
            p + "mlp.gate_proj.weight": (f, d),
            p + "mlp.up_proj.weight": (f, d),
            p + "mlp.down_proj.weight": (d, f),
        })
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                     "post_feedforward_layernorm"):
            shapes[p + norm + ".weight"] = (d,)
        if preset.family == "gemma3":  # Gemma 3 normalises queries and keys per head
            shapes[p + "self_attn.q_norm.weight"] = (h,)
            shapes[p + "self_attn.k_norm.weight"] = (h,)
    return shapes


def read_safetensors_header(path: Path) -> dict[str, dict]:
    """Tensor name -> {"dtype", "shape"} from a safetensors header (8-byte length + JSON)."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > _MAX_HEADER_BYTES:
                raise ValueError(f"header claims {length} bytes")
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise ModelDirError([f"Weights file {str(path)!r} is not readable safetensors ({exc})."]) from exc
    header.pop("__metadata__", None)
    return header


def _folder_problems(root: Path) -> list[str]:
    if not root.exists():
        return [f"model_dir {str(root)!r} does not exist."]
    if not root.is_dir():
        return [f"model_dir {str(root)!r} is not a folder."]
    problems = []
    if not (root / TOKENIZER_FILE).is_file():
        problems.append(f"model_dir {str(root)!r} has no {TOKENIZER_FILE} (Gemma's SentencePiece tokenizer).")
    if not sorted(root.glob("*.safetensors")):
        problems.append(f"model_dir {str(root)!r} has no *.safetensors weight files.")
    return problems


def _config_json_problems(root: Path, preset: Preset) -> list[str]:
    path = root / "config.json"
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"{str(path)!r} is not readable JSON ({exc})."]
    if not isinstance(data, dict):
        return [f"{str(path)!r} must hold a JSON object."]
    data = data.get("text_config", data)  # multimodal Gemma 3 configs nest the text model
    cfg = preset.make_config()
    return [
        f"config.json says {key}={data[key]} but preset {preset.name} has {getattr(cfg, attr)}."
        for key, attr in _HF_CONFIG_FIELDS.items()
        if key in data and data[key] != getattr(cfg, attr)
    ]


def _collect_tensors(root: Path) -> tuple[dict[str, dict], list[str]]:
    tensors, problems = {}, []
    for path in sorted(root.glob("*.safetensors")):
        header = read_safetensors_header(path)
        dtypes = sorted({meta.get("dtype") for meta in header.values()})
        if len(dtypes) > 1:  # Tunix's loader reads a file as one flat array of a single dtype
            problems.append(f"Weights file {path.name!r} mixes dtypes {dtypes}; Tunix needs one per file.")
        for name, meta in header.items():
            tensors[name.removeprefix("language_model.")] = meta
    return tensors, problems


def _shape_problems(tensors: dict[str, dict], preset: Preset) -> list[str]:
    expected = expected_hf_shapes(preset)
    missing = [name for name in expected if name not in tensors]
    problems = []
    if missing:
        examples = ", ".join(missing[:3])
        problems.append(f"{len(missing)} weight tensors of preset {preset.name} are missing, e.g. {examples}")
    layers = {int(m.group(1)) for name in tensors if (m := _LAYER_KEY.match(name))}
    n_layers = preset.make_config().num_layers
    if layers and max(layers) + 1 != n_layers:
        problems.append(f"The weights have {max(layers) + 1} layers but preset {preset.name} has {n_layers}.")
    for name, want in expected.items():
        got = tuple(tensors[name]["shape"]) if name in tensors else None
        if got is not None and not _shape_matches(got, want):
            shown = ["any" if w is None else w for w in want]
            problems.append(f"Tensor {name} has shape {list(got)}, preset {preset.name} expects {shown}.")
            if len(problems) >= 6:  # enough to see the pattern; a wrong preset mismatches every tensor
                break
    return problems


def _shape_matches(got: tuple[int, ...], want: tuple[int | None, ...]) -> bool:
    return len(got) == len(want) and all(w is None or w == g for w, g in zip(want, got, strict=True))


def _tokenizer_problems(root: Path, tensors: dict[str, dict]) -> list[str]:
    try:
        tokenizer = SentencePieceTokenizer(root / TOKENIZER_FILE)
    except TokenizerError as exc:
        return [str(exc)]
    embed = tensors.get("model.embed_tokens.weight")
    rows = embed["shape"][0] if embed else None
    if rows is not None and tokenizer.vocab_size > rows:
        return [f"{TOKENIZER_FILE} has {tokenizer.vocab_size} pieces but the embedding only {rows} rows."]
    return []


def validate_model_dir(path: str | Path, preset: str) -> None:
    """Raise ModelDirError naming everything wrong with `path` for `preset`; reads headers only."""
    spec = get_preset(preset)
    root = Path(path).expanduser()
    problems = _folder_problems(root)
    if problems:
        raise ModelDirError(problems)
    problems = _config_json_problems(root, spec)
    tensors, dtype_problems = _collect_tensors(root)
    problems += dtype_problems + _shape_problems(tensors, spec) + _tokenizer_problems(root, tensors)
    if problems:
        raise ModelDirError(problems)


def infer_preset(path: str | Path) -> str:
    """The preset whose shapes the folder matches (for generating from a bare model folder)."""
    root = Path(path).expanduser()
    problems = _folder_problems(root)
    if problems:
        raise ModelDirError(problems)
    for name in PRESETS:
        try:
            validate_model_dir(root, name)
        except ModelDirError:
            continue
        return name
    raise ModelDirError([f"model_dir {str(root)!r} matches no tunix preset ({', '.join(PRESETS)})."])


def load_model(path: str | Path, preset: str, mesh: jax.sharding.Mesh | None = None) -> nnx.Module:
    """Build the preset's Tunix model with the folder's weights, through Tunix's safetensors loader; with
    a mesh each weight is placed straight onto it by the model's own sharding (Tunix's `fsdp` and `tp`
    axes), so a model too big for one device never has to fit on one."""
    spec = get_preset(preset)
    loader = gemma3_safetensors if spec.family == "gemma3" else gemma2_safetensors
    return loader.create_model_from_safe_tensors(str(Path(path).expanduser()), spec.make_config(), mesh=mesh)


def apply_lora(model: nnx.Module, rank: int, alpha: float, seed: int,
               mesh: jax.sharding.Mesh | None = None) -> nnx.Module:
    """Wrap the projections with qwix LoRA adapters; PeftTrainer then trains only nnx.LoRAParam.

    Consumes `model` (its buffers are donated). qwix creates the adapters by running the model once;
    run eagerly that compiles ~150 one-op XLA programs (about 10 s on a busy 2-core CPU), under
    nnx.jit it is one program (about 2 s) with bit-identical adapters and outputs. The program's
    outputs come back replicated, so on a mesh every variable is laid out again by its annotation."""
    import qwix

    provider = qwix.LoraProvider(module_path=LORA_MODULE_PATH, rank=int(rank), alpha=float(alpha))

    @functools.partial(nnx.jit, donate_argnums=0)
    def with_adapters(base: nnx.Module) -> nnx.Module:
        return qwix.apply_lora_to_model(base, provider, rngs=nnx.Rngs(seed), **base.get_model_input())

    model = with_adapters(model)
    return shard_model(model, mesh) if mesh is not None else model


def shard_model(model: nnx.Module, mesh: jax.sharding.Mesh) -> nnx.Module:
    """Every variable of `model` placed on `mesh` by its own sharding annotation (in place)."""
    state = nnx.state(model)
    nnx.update(model, jax.device_put(state, nnx.get_named_sharding(state, mesh)))
    return model


def model_cache_shape(model: nnx.Module) -> tuple[int, int, int]:
    """(num_layers, num_kv_heads, head_dim) for the sampler's KV cache."""
    cfg = model.config
    return cfg.num_layers, cfg.num_kv_heads, cfg.head_dim
