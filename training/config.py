"""TrainConfig (SPEC §4): one validated schema for every backend, checked before a run is queued.

`TrainConfig.from_dict` collects every problem at once and raises `ConfigError` whose `errors` maps
each offending key to messages, so an API can return all of them in one 400.

Batch semantics: `batch_size` examples per micro-batch, `grad_accum` micro-batches per optimizer
update, so one step consumes `batch_size * grad_accum` examples. With `packing` (builtin only) a
micro-batch is `batch_size` rows of `max_seq_len` tokens, each holding as many whole examples as fit.

`tokenizer` (builtin only): "byte" (UTF-8 bytes), "spm", a SentencePiece model of about
`spm_vocab_size` pieces trained on the run's own training export, or "spm_letters", the same model
with single-quoted words spelled one character per id (see training.spm_tokenizer).

`mesh` (both backends): where the run computes, "auto" (every local device, all on the `fsdp` axis) or
axis sizes `{"fsdp": n, "tp": m}` (training.mesh). It is left out of `config_hash`: it changes where the
arithmetic happens, not what it computes, so a run keeps its identity (and resumes) on another device count.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

from training.spm_tokenizer import MAX_VOCAB_SIZE, MIN_VOCAB_SIZE
from training.trace_schema import canonical_json

BACKENDS = ("builtin", "tunix")
BUILTIN_PRESETS = ("tiny", "small")
# Presets that load real weights from `model_dir`; `gemma3-tiny` is random-weight, for tests.
TUNIX_WEIGHT_PRESETS = ("gemma3-1b", "gemma2-2b")
TUNIX_PRESETS = TUNIX_WEIGHT_PRESETS + ("gemma3-tiny",)
PRESETS_BY_BACKEND = {"builtin": BUILTIN_PRESETS, "tunix": TUNIX_PRESETS}
SCHEDULES = ("cosine", "linear", "constant")
TOKENIZERS = ("byte", "spm", "spm_letters")
MAX_SEQ_LEN_LIMIT = 8192
LORA_KEYS = ("rank", "alpha")
AUTO_MESH = "auto"
MESH_AXES = ("fsdp", "tp")
# Left out of config_hash: where a run computes, not what (see the module docstring).
PLACEMENT_KEYS = ("mesh",)
# eval_every without held-out data: losses on a fixed sample of this many batches of training rows.
EVAL_SAMPLE_BATCHES = 4

Errors = dict[str, list[str]]


class ConfigError(ValueError):
    """A config that cannot run; `errors` maps each bad or unknown key to its messages."""

    def __init__(self, errors: Errors):
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in errors.items()))
        self.errors = errors


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    backend: str = "builtin"
    model: str = "tiny"
    model_dir: str | None = None
    max_steps: int = 200
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    schedule: str = "cosine"
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    max_seq_len: int = 512
    seed: int = 0
    eval_every: int = 0
    checkpoint_every: int = 100
    lora: dict | None = None
    tokenizer: str = "byte"
    spm_vocab_size: int = 1024
    packing: bool = False
    mesh: str | dict = AUTO_MESH

    @classmethod
    def from_dict(cls, data: Any) -> TrainConfig:
        """Validate `data` completely and build the config, or raise ConfigError naming every problem."""
        if not isinstance(data, dict):
            raise ConfigError({"non_field_errors": ["A training config must be a mapping of keys to values"]})
        errors = _config_errors(data)
        if errors:
            raise ConfigError(errors)
        values = dict(data)
        for key in _FLOAT_KEYS:
            if key in values:
                values[key] = float(values[key])
        if values.get("lora") is not None:
            values["lora"] = {"rank": int(values["lora"]["rank"]), "alpha": float(values["lora"]["alpha"])}
        if isinstance(values.get("mesh"), dict):
            values["mesh"] = {axis: int(values["mesh"].get(axis, 1)) for axis in MESH_AXES}
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        import yaml

        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            message = f"Cannot read config file {str(path)!r}: {exc.strerror}."
            raise ConfigError({"config": [message]}) from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError({"config": [f"{str(path)!r} is not valid YAML: {exc}"]}) from exc
        return cls.from_dict(data if data is not None else {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        identity = {key: value for key, value in self.to_dict().items() if key not in PLACEMENT_KEYS}
        return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()

    @property
    def examples_per_step(self) -> int:
        return self.batch_size * self.grad_accum


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(TrainConfig))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
_FLOAT_KEYS = ("learning_rate", "weight_decay", "clip_norm")
# key -> (smallest allowed, largest allowed or None)
_INT_RANGES = {
    "max_steps": (1, None),
    "batch_size": (1, None),
    "grad_accum": (1, None),
    "warmup_steps": (0, None),
    "max_seq_len": (16, MAX_SEQ_LEN_LIMIT),
    "seed": (0, 2**63 - 1),
    "eval_every": (0, None),
    "checkpoint_every": (0, None),
    "spm_vocab_size": (MIN_VOCAB_SIZE, MAX_VOCAB_SIZE),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float))) and not isinstance(value, bool)


def _config_errors(data: dict) -> Errors:
    errors: Errors = {}
    for key in sorted(set(data) - set(_FIELD_NAMES), key=str):
        errors.setdefault(str(key), []).append(f"Unknown key; allowed keys are {', '.join(_FIELD_NAMES)}.")
    merged = {**_DEFAULTS, **{k: v for k, v in data.items() if k in _FIELD_NAMES}}
    _check_ints(errors, merged)
    _check_floats(errors, merged)
    _check_choices(errors, merged)
    _check_backend_rules(errors, merged)
    _check_cross_field(errors, merged)
    return errors


def _check_ints(errors: Errors, cfg: dict) -> None:
    for key, (low, high) in _INT_RANGES.items():
        value = cfg[key]
        if not _is_int(value):
            errors.setdefault(key, []).append(f"Must be an integer (got {value!r}).")
        elif value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            errors.setdefault(key, []).append(f"Must be {bound} (got {value}).")


def _check_floats(errors: Errors, cfg: dict) -> None:
    lr = cfg["learning_rate"]
    if not _is_number(lr) or not 0 < lr <= 1:
        errors.setdefault("learning_rate", []).append(f"Must be a number in (0, 1] (got {lr!r}).")
    for key in ("weight_decay", "clip_norm"):
        value = cfg[key]
        if not _is_number(value) or value < 0:
            errors.setdefault(key, []).append(f"Must be a number >= 0 (got {value!r}).")


def _check_choices(errors: Errors, cfg: dict) -> None:
    if cfg["backend"] not in BACKENDS:
        errors.setdefault("backend", []).append(
            f"Must be one of {', '.join(BACKENDS)} (got {cfg['backend']!r})."
        )
    if cfg["schedule"] not in SCHEDULES:
        errors.setdefault("schedule", []).append(
            f"Must be one of {', '.join(SCHEDULES)} (got {cfg['schedule']!r})."
        )
    if cfg["tokenizer"] not in TOKENIZERS:
        errors.setdefault("tokenizer", []).append(
            f"Must be one of {', '.join(TOKENIZERS)} (got {cfg['tokenizer']!r})."
        )
    if not isinstance(cfg["packing"], bool):
        errors.setdefault("packing", []).append(f"Must be true or false (got {cfg['packing']!r}).")
    _check_mesh(errors, cfg["mesh"])


def _check_mesh(errors: Errors, mesh: Any) -> None:
    if mesh == AUTO_MESH:
        return
    if not isinstance(mesh, dict) or not mesh:
        errors.setdefault("mesh", []).append(
            f'Must be "auto" or axis sizes such as {{"fsdp": 8, "tp": 1}} (got {mesh!r}).')
        return
    for key in sorted(set(mesh) - set(MESH_AXES), key=str):
        errors.setdefault(f"mesh.{key}", []).append(f"Unknown mesh axis; the axes are {', '.join(MESH_AXES)}.")
    for axis in MESH_AXES:
        size = mesh.get(axis, 1)
        if not _is_int(size) or size < 1:
            errors.setdefault(f"mesh.{axis}", []).append(f"Must be an integer >= 1 (got {size!r}).")


def _check_backend_rules(errors: Errors, cfg: dict) -> None:
    backend, model, model_dir = cfg["backend"], cfg["model"], cfg["model_dir"]
    presets = PRESETS_BY_BACKEND.get(backend)
    if presets is not None and model not in presets:
        errors.setdefault("model", []).append(
            f"{model!r} is not a preset of the {backend} backend; choose one of {', '.join(presets)}."
        )
    if model_dir is not None and (not isinstance(model_dir, str) or not model_dir.strip()):
        errors.setdefault("model_dir", []).append(f"Must be a non-empty path string (got {model_dir!r}).")
    elif backend == "builtin" and model_dir is not None:
        errors.setdefault("model_dir", []).append("Only the tunix backend loads weights from model_dir.")
    elif backend == "tunix" and model in TUNIX_WEIGHT_PRESETS and model_dir is None:
        errors.setdefault("model_dir", []).append(
            f"Required for {model!r}: a local folder with its safetensors weights and tokenizer."
        )
    if backend == "tunix" and cfg["tokenizer"] != "byte":
        errors.setdefault("tokenizer", []).append("The tunix backend uses the model's own tokenizer; use byte.")
    if backend == "tunix" and cfg["packing"] is True:
        errors.setdefault("packing", []).append("Only the builtin backend packs examples.")
    _check_lora(errors, cfg)


def _check_lora(errors: Errors, cfg: dict) -> None:
    lora = cfg["lora"]
    if lora is None:
        return
    if cfg["backend"] == "builtin":
        errors.setdefault("lora", []).append("LoRA is only supported by the tunix backend; use null here.")
        return
    if not isinstance(lora, dict):
        errors.setdefault("lora", []).append(f"Must be a mapping with rank and alpha, or null (got {lora!r})")
        return
    for key in sorted(set(lora) - set(LORA_KEYS), key=str):
        errors.setdefault(f"lora.{key}", []).append("Unknown key; allowed keys are rank, alpha.")
    rank, alpha = lora.get("rank"), lora.get("alpha")
    if not _is_int(rank) or rank < 1:
        errors.setdefault("lora.rank", []).append(f"Must be an integer >= 1 (got {rank!r}).")
    if not _is_number(alpha) or alpha <= 0:
        errors.setdefault("lora.alpha", []).append(f"Must be a number > 0 (got {alpha!r}).")


def _check_cross_field(errors: Errors, cfg: dict) -> None:
    warmup, max_steps = cfg["warmup_steps"], cfg["max_steps"]
    if "max_steps" in errors or "warmup_steps" in errors:
        return  # already reported; comparing a bad value would only add noise
    if warmup > max_steps:
        errors.setdefault("warmup_steps", []).append(
            f"Must not exceed max_steps ({warmup} > {max_steps})."
        )
