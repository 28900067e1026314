"""What GRPO optimises: a reward spec over the product's deterministic judges (training.judges, SPEC §5),
and the group-normalised advantages and reward statistics of a step's completions.

A spec is `{"judges": {name: weight}, "versions": {name: version}}`. Each judge scores an output 0 or 1;
the reward is the weighted sum over the spec's judges. `versions` is optional and may name any subset of
the spec's judges: a version must be the one this code implements (there is only one implementation of
each judge), so a spec written against another judge version is refused rather than silently rescored.
The normalised spec always records the version of every judge it uses, so a changed judge changes the
recorded spec (and the run's config hash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from training import judges
from training.config import ConfigError

JUDGE_NAMES = ("answer_exact", "format", "reasoning_checks")
SPEC_KEYS = ("judges", "versions")
ADVANTAGE_EPS = 1e-6


def judge_scores(output: str, expected: str, names: tuple[str, ...] = JUDGE_NAMES) -> dict[str, float]:
    """1.0 or 0.0 per judge for one output (the text without the stop token) and its expected answer."""
    scorers = {
        "answer_exact": lambda: judges.answer_exact(output, expected),
        "format": lambda: judges.format_ok(output),
        "reasoning_checks": lambda: judges.reasoning_checks(output)["ok"],
    }
    return {name: float(bool(scorers[name]())) for name in names}


@dataclass(frozen=True)
class RewardSpec:
    weights: dict[str, float]  # judge name -> weight >= 0, at least one > 0
    versions: dict[str, str]  # judge name -> version, for every judge in `weights`

    @classmethod
    def from_dict(cls, data: Any) -> RewardSpec:
        """Validate a spec, or raise ConfigError whose keys name each bad field (`reward.judges.<name>`)."""
        errors = _spec_errors(data)
        if errors:
            raise ConfigError(errors)
        weights = {name: float(data["judges"][name]) for name in sorted(data["judges"])}
        return cls(weights, {name: judges.JUDGE_VERSIONS[name] for name in weights})

    def to_dict(self) -> dict:
        return {"judges": dict(self.weights), "versions": dict(self.versions)}

    def reward(self, output: str, expected: str) -> tuple[float, dict[str, float]]:
        """(weighted total, each judge's 0/1 score) for one output."""
        scores = judge_scores(output, expected, tuple(self.weights))
        return sum(self.weights[name] * score for name, score in scores.items()), scores


def _spec_errors(data: Any) -> dict[str, list[str]]:
    if not isinstance(data, dict):
        return {"reward": [f"Must be a mapping with judges (and optionally versions) (got {data!r})."]}
    errors: dict[str, list[str]] = {}
    for key in sorted(set(data) - set(SPEC_KEYS), key=str):
        errors[f"reward.{key}"] = [f"Unknown key; allowed keys are {', '.join(SPEC_KEYS)}."]
    weights = data.get("judges")
    if not isinstance(weights, dict) or not weights:
        errors["reward.judges"] = [f"Must map judge names ({', '.join(JUDGE_NAMES)}) to weights (got {weights!r})."]
        return errors
    _check_weights(errors, weights)
    _check_versions(errors, data.get("versions", {}), weights)
    return errors


def _check_weights(errors: dict, weights: dict) -> None:
    for name, weight in weights.items():
        field = f"reward.judges.{name}"
        if name not in JUDGE_NAMES:
            errors[field] = [f"Unknown judge; the judges are {', '.join(JUDGE_NAMES)}."]
        elif isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            errors[field] = [f"The weight must be a finite number (got {weight!r})."]
        elif weight < 0:
            errors[field] = [f"The weight must be >= 0 (got {weight!r})."]
    bad = any(key.startswith("reward.judges.") for key in errors)
    if not bad and all(weight == 0 for weight in weights.values()):
        errors["reward.judges"] = ["At least one judge needs a weight > 0; all weights are zero."]


def _check_versions(errors: dict, versions: Any, weights: dict) -> None:
    if not isinstance(versions, dict):
        errors["reward.versions"] = [f"Must map judge names to versions (got {versions!r})."]
        return
    for name, version in versions.items():
        field = f"reward.versions.{name}"
        if name not in weights:
            errors[field] = ["Names a judge the spec does not weight; list it under judges first."]
        elif name in judges.JUDGE_VERSIONS and str(version) != judges.JUDGE_VERSIONS[name]:
            errors[field] = [f"This code implements {name} version {judges.JUDGE_VERSIONS[name]!r}, "
                             f"not {version!r}."]


def group_advantages(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rewards [P, G] -> (advantages [P, G], [P] True where the group's rewards are all equal).

    An all-equal group gets exactly zero (rounding in its mean would otherwise leave noise / 1e-6)."""
    rewards = np.asarray(rewards, dtype=np.float64)
    flat = np.all(rewards == rewards[:, :1], axis=1)
    advantages = (rewards - rewards.mean(axis=1, keepdims=True)) / (rewards.std(axis=1, keepdims=True)
                                                                     + ADVANTAGE_EPS)
    advantages[flat] = 0.0
    return advantages.astype(np.float32), flat


def reward_metrics(totals: np.ndarray, judged: list[dict[str, float]]) -> dict:
    """Mean and std of the weighted totals and of each judge's 0/1 scores (`reward_<judge>_mean`…)."""
    metrics = {"reward_mean": float(totals.mean()), "reward_std": float(totals.std())}
    for name in judged[0]:
        scores = np.asarray([scores[name] for scores in judged])
        metrics[f"reward_{name}_mean"] = float(scores.mean())
        metrics[f"reward_{name}_std"] = float(scores.std())
    return metrics
