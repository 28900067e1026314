"""GRPOConfig, the prompts a run samples from, and its per-step randomness: plain Python, no JAX."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from training.config import ConfigError
from training.data import DataError
from training.rewards import RewardSpec
from training.trace_schema import canonical_json

ALGORITHM = "grpo"
SAMPLES_FILE = "samples.jsonl"
DEFAULT_REWARD = {"judges": {"answer_exact": 1.0}}


@dataclasses.dataclass(frozen=True)
class GRPOConfig:
    max_steps: int = 100
    prompts_per_step: int = 8
    group_size: int = 4  # G completions per prompt
    max_new_tokens: int = 128
    temperature: float = 1.0
    top_p: float = 1.0
    learning_rate: float = 1e-4
    warmup_steps: int = 0  # linear warmup over this many GRPO steps, then constant
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    beta: float = 0.04  # KL weight
    epsilon: float = 0.2  # ratio clip
    inner_updates: int = 1  # optimizer updates per sampled batch (Tunix's num_iterations)
    seed: int = 0
    checkpoint_every: int = 50
    sample_every: int = 10  # every N steps, record `sample_count` completions with their judges (0: never)
    sample_count: int = 4
    reward: dict = dataclasses.field(default_factory=lambda: dict(DEFAULT_REWARD))

    def __post_init__(self):
        # The recorded reward always names its judges' versions, however the config was built.
        object.__setattr__(self, "reward", RewardSpec.from_dict(self.reward).to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> GRPOConfig:
        """Validate everything at once; raise ConfigError naming each bad key (`reward.judges.<name>`…)."""
        if not isinstance(data, dict):
            raise ConfigError({"non_field_errors": ["A GRPO config must be a mapping of keys to values"]})
        errors = _config_errors(data)
        if errors:
            raise ConfigError(errors)
        return cls(**{key: float(value) if key in _FLOAT_RULES else value for key, value in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> GRPOConfig:
        """A YAML or JSON (by its `.json` suffix) config file; an unreadable or unparsable one is a
        ConfigError on `config`. JSON is not read as YAML: PyYAML takes JSON's `1e-3` for a string."""
        import yaml

        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError({"config": [f"Cannot read config file {str(path)!r}: {exc.strerror}."]}) from exc
        try:
            data = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError({"config": [f"{str(path)!r} is not valid {Path(path).suffix[1:] or 'YAML'}: "
                                          f"{exc}"]}) from exc
        return cls.from_dict(data if data is not None else {})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def reward_spec(self) -> RewardSpec:
        return RewardSpec.from_dict(self.reward)


_DEFAULTS = {**dataclasses.asdict(GRPOConfig()), "reward": DEFAULT_REWARD}
_INT_MINIMUMS = {"max_steps": 1, "prompts_per_step": 1, "group_size": 2, "max_new_tokens": 1, "warmup_steps": 0,
                 "inner_updates": 1, "seed": 0, "checkpoint_every": 0, "sample_every": 0, "sample_count": 0}
_FLOAT_RULES = {
    "learning_rate": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "temperature": (lambda v: 0 < v <= 10, "in (0, 10]"),
    "top_p": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "epsilon": (lambda v: 0 < v < 1, "in (0, 1)"),
    **{key: (lambda v: v >= 0, ">= 0") for key in ("weight_decay", "clip_norm", "beta")},
}


def _config_errors(data: dict) -> dict[str, list[str]]:
    errors = {str(key): [f"Unknown key; allowed keys are {', '.join(_DEFAULTS)}."]
              for key in sorted(set(data) - set(_DEFAULTS), key=str)}
    cfg = {**_DEFAULTS, **{k: v for k, v in data.items() if k in _DEFAULTS}}
    for key, low in _INT_MINIMUMS.items():
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < low:
            errors[key] = [f"Must be an integer >= {low} (got {cfg[key]!r})."]
    for key, (allowed, bounds) in _FLOAT_RULES.items():
        value = cfg[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not number or not allowed(value):
            errors[key] = [f"Must be a number {bounds} (got {value!r})."]
    try:
        RewardSpec.from_dict(cfg["reward"])
    except ConfigError as exc:
        errors.update(exc.errors)
    return errors


# --- data and randomness ---------------------------------------------------------------------

def check_prompts(prompts: list[dict]) -> list[dict]:
    """Items `{"prompt": raw user text, "expected_answer": str, ...}` (eval items have this shape)."""
    if not prompts:
        raise DataError("GRPO needs at least one prompt with an expected answer.")
    for index, item in enumerate(prompts):
        for key in ("prompt", "expected_answer"):
            if not isinstance(item, dict) or not isinstance(item.get(key), str) or not item[key]:
                raise DataError(f"prompt {index}: key {key!r} must be a non-empty string.")
    return prompts


def read_prompts(path: str | Path) -> list[dict]:
    """The items of a JSONL file, one per line (eval items will do: keys besides the two are ignored)."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} line {line_no}: not valid JSON ({exc.msg}).") from exc
    try:
        return check_prompts(items)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc


def prompts_hash(prompts: list[dict]) -> str:
    content = [[item["prompt"], item["expected_answer"]] for item in prompts]
    return hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()


def step_seed(seed: int, step: int) -> int:
    """The sampling seed of 0-based `step`: a pure function of (seed, step)."""
    digest = hashlib.sha256(f"grpo:{seed}:{step}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1
