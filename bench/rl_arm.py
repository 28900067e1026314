"""What RL buys (bench_training's `rl` section; `--no-rl` skips it): from the `final` SFT checkpoint, the
same wall-clock budget of (a) more SFT on the same traces (`init_from` the checkpoint, a fresh optimizer and
schedule) and (b) GRPO with the judges as the reward (answer_exact + 0.5 format + 0.5 reasoning_checks) on the
same traces' prompts and final answers. Both are evaluated greedily on the same eval-v1 items with the same
judges as the starting checkpoint. pass@k of the starting checkpoint (k samples per item at the GRPO
temperature) is the ceiling GRPO can sharpen toward: it reinforces only answers the model already samples.

Everything runs in the bench_training process, one after the other, so the arms share the machine's state.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from bench.bench_training import (
    ARMS,
    DeadlineHooks,
    arm_config,
    plan_steps,
    section_scores,
    step_seconds,
    training_traces,
)
from bench.report import compare, figure

RL_ISSUE = "#23 GRPO"
REWARD = {"judges": {"answer_exact": 1.0, "format": 0.5, "reasoning_checks": 0.5}}
# The levers the issue names (G, temperature, KL weight, learning rate) are `--grpo key=value` overrides.
GRPO_SETTINGS = {"prompts_per_step": 8, "group_size": 8, "max_new_tokens": 256, "temperature": 0.8,
                 "learning_rate": 5e-5, "beta": 0.04, "checkpoint_every": 0, "sample_every": 0, "seed": 0}
QUICK_GRPO = {"prompts_per_step": 2, "group_size": 4, "max_new_tokens": 32}
# `--rl-select N`: N training prompts, SELECT_K samples each from the starting checkpoint; GRPO then trains only on
# those it answers right sometimes but not always (a group of all-right or all-wrong answers has no signal).
SELECT_K, QUICK_SELECT_K = 4, 2
PASS_K, QUICK_PASS_K = 8, 2
TARGETS = {"in_distribution_answer_accuracy": 92, "every_in_distribution_category": 60,
           "out_of_distribution_answer_accuracy": 30, "in_distribution_format_compliance": 99}


class GRPODeadline(DeadlineHooks):
    """bench_training's deadline (GRPO checkpoints before it stops), keeping each GRPO step's numbers."""

    def __init__(self, deadline: float):
        super().__init__(deadline)
        self.steps: list[dict] = []

    def on_step(self, metrics: dict) -> None:
        self.steps.append(metrics)


def rl_section(work: Path, start_dir: Path, start_arm: dict, budget_seconds: float, count: int, overrides: dict,
               plan, quick: bool, grpo_overrides: dict, select: int = 0, variants: list[dict] = ()) -> dict:
    """The starting checkpoint's scores and pass@k, then each continuation's run and scores; each of
    `variants` (GRPO settings over the base ones) is one more GRPO arm from the same start and budget."""
    from training.generators import generate

    items = generate("eval-v1").items[:plan.eval_items]
    k = QUICK_PASS_K if quick else PASS_K
    settings = grpo_settings(quick, grpo_overrides)
    began = time.perf_counter()
    samples = sampled_predictions(start_dir, items, k, max_new_tokens=plan.eval_new_tokens,
                                  temperature=settings["temperature"], batch_size=plan.eval_batch)
    start = {"sections": start_arm["sections"], "pass_at_k": pass_at_k(samples), "k": k,
             "sampled_mean_accuracy": _sampled_mean(samples), "pass_at_k_seconds": time.perf_counter() - began}
    select_k = QUICK_SELECT_K if quick else SELECT_K
    return {"start": start, "budget_seconds": budget_seconds,
            "sft_more": continued_sft(work, start_dir, budget_seconds, overrides, plan, items),
            "grpo": grpo_arm(work, start_dir, budget_seconds, count, settings, plan, items, select, select_k),
            "variants": [{"overrides": variant, **grpo_arm(work, start_dir, budget_seconds, count,
                                                           {**settings, **variant}, plan, items, select, select_k,
                                                           out_name=f"grpo-variant-{index}")}
                         for index, variant in enumerate(variants, start=1)]}


def check_variants(variants: list[dict], quick: bool, base_overrides: dict) -> list[dict]:
    """Each variant as the full GRPO config it makes over the base settings, so a bad one stops the bench
    before anything trains (ConfigError names the key); the variants come back unchanged."""
    from training.grpo.config import GRPOConfig

    for variant in variants:
        GRPOConfig.from_dict({**grpo_settings(quick, {**base_overrides, **variant}), "max_steps": 1})
    return variants


def grpo_settings(quick: bool, overrides: dict) -> dict:
    """The RL arm's GRPO settings: the bench's, shrunk in quick mode, then `overrides` (a `reward` too)."""
    return {"reward": REWARD, **GRPO_SETTINGS, **(QUICK_GRPO if quick else {}), **overrides}


def sampled_predictions(run_dir: Path, items: list[dict], k: int, *, max_new_tokens: int, temperature: float,
                        batch_size: int) -> list[list[dict]]:
    """k judged samples of every item (seeds 0..k-1), one list of predictions per seed."""
    from training.evaluate import evaluate

    return [evaluate(run_dir, items, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                     batch_size=batch_size)["predictions"] for seed in range(k)]


def pass_at_k(samples: list[list[dict]]) -> dict:
    """Per section (and category): the share of items with a correct answer in any of the k samples."""
    by_item = zip(*samples, strict=True)
    sections: dict = {}
    for predictions in by_item:
        first = predictions[0]
        hit = any(p["correct"] for p in predictions)
        section = sections.setdefault(first["section"], {"hits": 0, "count": 0, "by_category": {}})
        category = section["by_category"].setdefault(first["category"], {"hits": 0, "count": 0})
        for bucket in (section, category):
            bucket["hits"] += hit
            bucket["count"] += 1
    return {name: {"pass_at_k": s["hits"] / s["count"], "count": s["count"],
                   "by_category": {c: v["hits"] / v["count"] for c, v in sorted(s["by_category"].items())}}
            for name, s in sections.items()}


def _sampled_mean(samples: list[list[dict]]) -> dict:
    out = {}
    for section in ("in_distribution", "out_of_distribution"):
        scores = [sum(p["correct"] for p in run if p["section"] == section) for run in samples]
        count = sum(1 for p in samples[0] if p["section"] == section)
        if count:
            out[section] = statistics.mean(scores) / count
    return out


def _scores(run_dir: Path, items: list[dict], plan) -> dict:
    from training.evaluate import evaluate

    report = evaluate(run_dir, items, max_new_tokens=plan.eval_new_tokens, batch_size=plan.eval_batch)
    return section_scores(report["predictions"])


def continued_sft(work: Path, start_dir: Path, budget_seconds: float, overrides: dict, plan,
                  items: list[dict]) -> dict:
    """More SFT on the `final` arm's traces, from its checkpoint, for the budget."""
    from training.engine import train

    arm = ARMS["final"]
    seconds = plan.assumed_step_seconds or step_seconds(arm_config(arm, overrides))
    config = arm_config(arm, overrides, plan_steps(budget_seconds, seconds))
    hooks = DeadlineHooks(time.monotonic() + budget_seconds)
    began = time.perf_counter()
    result = train(config, work / "final.jsonl", work / "sft_more", hooks, init_dir=start_dir)
    return {"status": result.status, "steps": result.steps_completed, "train_wall_seconds": time.perf_counter() - began,
            "config": config.to_dict(), "last_10_mean_loss": statistics.mean(hooks.losses[-10:]),
            "sections": _scores(work / "sft_more", items, plan)}


def grpo_arm(work: Path, start_dir: Path, budget_seconds: float, count: int, settings: dict, plan,
             items: list[dict], select: int = 0, select_k: int = SELECT_K, out_name: str = "grpo") -> dict:
    """GRPO on the same traces' prompts and final answers, from the checkpoint, for the budget (which also
    pays for choosing the prompts when `select` asks for it), into `work / out_name`."""
    from training.grpo.config import GRPOConfig
    from training.grpo.trainer import grpo_train

    prompts = [{"prompt": trace["prompt"], "expected_answer": trace["final_answer"]}
               for trace in training_traces(ARMS["final"]["dataset"], count)]
    config = GRPOConfig.from_dict({**settings, "max_steps": 100_000})  # the deadline stops it
    hooks = GRPODeadline(time.monotonic() + budget_seconds)
    began = time.perf_counter()
    selection = None
    if select:
        prompts, selection = select_by_pass_rate(start_dir, prompts, select, select_k, config)
    result = grpo_train(config, prompts, start_dir, work / out_name, hooks)
    steps = hooks.steps
    completions = config.prompts_per_step * config.group_size
    return {"status": result.status, "steps": result.steps_completed, "train_wall_seconds": time.perf_counter() - began,
            "config": config.to_dict(), "selection": selection,
            "reward_curve": [round(s["reward_mean"], 4) for s in steps],
            "answer_exact_curve": [round(s["reward_answer_exact_mean"], 4) for s in steps],
            "kl_curve": [round(s["kl"], 5) for s in steps],
            "zero_signal_fraction_mean": statistics.mean(s["zero_signal_fraction"] for s in steps) if steps else None,
            "median_step_seconds": _median([s["sample_seconds"] + s["update_seconds"] for s in steps[1:]]),
            "completions_per_s": _median([completions / s["sample_seconds"] for s in steps[1:]]),
            "sampled_tokens_per_s": _median([completions * s["completion_length_mean"] / s["sample_seconds"]
                                             for s in steps[1:]]),
            "sections": _scores(work / out_name, items, plan)}


def select_by_pass_rate(start_dir: Path, prompts: list[dict], candidates: int, k: int, config) -> tuple[list, dict]:
    """The first `candidates` prompts (the data order is already seeded) that the starting checkpoint answers
    right in some but not all of `k` samples at the GRPO temperature; all of them if none is mixed."""
    began = time.perf_counter()
    pool = prompts[:candidates]
    samples = sampled_predictions(start_dir, pool, k, max_new_tokens=config.max_new_tokens,
                                  temperature=config.temperature, batch_size=64)
    hits = [sum(p["correct"] for p in predictions) for predictions in zip(*samples, strict=True)]
    mixed = [item for item, hit in zip(pool, hits, strict=True) if 0 < hit < k]
    return mixed or pool, {"candidates": len(pool), "k": k, "kept": len(mixed),
                           "always_right": hits.count(k), "never_right": hits.count(0),
                           "seconds": time.perf_counter() - began}


def _selection_note(selection: dict | None) -> str:
    if not selection:
        return ""
    return (f"GRPO on the {selection['kept']} of {selection['candidates']} prompts the start answered right in "
            f"1–{selection['k'] - 1} of {selection['k']} samples ({selection['seconds']:.0f} s of its budget)")


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def rl_figures(rl: dict, generation: dict | None) -> list[dict]:
    """SFT + GRPO against the issue's targets, with continued SFT at equal wall time as the comparison."""
    grpo, more, start = rl["grpo"]["sections"], rl["sft_more"]["sections"], rl["start"]
    minutes = rl["budget_seconds"] / 60
    judged = abs(minutes - 10) < 0.5  # the targets are for 10 + 10 minutes

    def target(key):
        return (">=", TARGETS[key]) if judged else None

    def pct(share):
        return None if share is None else 100 * share

    inside, outside = grpo["in_distribution"], grpo["out_of_distribution"]
    weakest = min(inside["by_category"].items(), key=lambda item: item[1]["answer_accuracy"], default=None)
    budget = f"{minutes:g} min" if rl["budget_seconds"] >= 60 else f"{rl['budget_seconds']:g} s"
    label = f"SFT then {budget} GRPO"
    figures = [
        figure(RL_ISSUE, f"eval-v1 in-distribution answer accuracy ({label})", pct(inside["answer_accuracy"]), "%",
               target=target("in_distribution_answer_accuracy"),
               comparison=compare(f"{budget} more SFT", pct(more["in_distribution"]["answer_accuracy"]), "%"),
               note=f"start {pct(start['sections']['in_distribution']['answer_accuracy']):.1f} %"),
        figure(RL_ISSUE, "GRPO minus more SFT, in-distribution accuracy (points)",
               pct(inside["answer_accuracy"] - more["in_distribution"]["answer_accuracy"]), "points",
               target=(">", 0) if judged else None, note=_selection_note(rl["grpo"].get("selection"))),
        figure(RL_ISSUE, "weakest in-distribution category after GRPO" + (f" ({weakest[0]})" if weakest else ""),
               pct(weakest[1]["answer_accuracy"]) if weakest else None, "%",
               target=target("every_in_distribution_category")),
        figure(RL_ISSUE, "eval-v1 out-of-distribution answer accuracy after GRPO", pct(outside["answer_accuracy"]), "%",
               target=target("out_of_distribution_answer_accuracy"),
               comparison=compare("more SFT", pct(more["out_of_distribution"]["answer_accuracy"]), "%")),
        figure(RL_ISSUE, "in-distribution format compliance after GRPO", pct(inside["format_compliance"]), "%",
               target=target("in_distribution_format_compliance")),
        *[figure(RL_ISSUE, f"starting checkpoint pass@{start['k']}, {section.replace('_', ' ')}",
                 pct(start["pass_at_k"][section]["pass_at_k"]), "%",
                 note="the ceiling GRPO can sharpen toward; sampled mean "
                      f"{pct(start['sampled_mean_accuracy'].get(section, 0)):.1f} %")
          for section in ("in_distribution", "out_of_distribution") if section in start["pass_at_k"]],
    ]
    figures += [variant_figure(variant, rl["grpo"]) for variant in rl.get("variants", ())]
    if rl["grpo"]["completions_per_s"] is not None:
        figures.append(figure(
            RL_ISSUE, "GRPO sampling throughput", rl["grpo"]["sampled_tokens_per_s"], "tokens/s",
            comparison=compare("the KV-cache generator alone (batch 8, no stop)",
                               generation["kv_cache_tokens_per_s"], "tokens/s") if generation else None,
            note=f"{rl['grpo']['completions_per_s']:.1f} completions/s; "
                 f"{rl['grpo']['median_step_seconds']:.2f} s per step"))
    return figures


def variant_label(overrides: dict) -> str:
    return ", ".join(f"{key}={json.dumps(value, sort_keys=True, separators=(',', ':'))}"
                     for key, value in sorted(overrides.items()))


def variant_figure(variant: dict, base: dict) -> dict:
    """A lever: one variant's in-distribution accuracy against the base GRPO arm of the same run."""
    def accuracy(arm, section):
        share = arm["sections"].get(section, {}).get("answer_accuracy")
        return None if share is None else 100 * share

    def shown(value):
        return "n/a" if value is None else f"{value:.1f} %"

    zero = variant["zero_signal_fraction_mean"]
    outside = "out_of_distribution"
    return figure(
        RL_ISSUE, f"GRPO lever {variant_label(variant['overrides'])}: in-distribution answer accuracy",
        accuracy(variant, "in_distribution"), "%",
        comparison=compare("the base GRPO arm", accuracy(base, "in_distribution"), "%"),
        note=f"out of distribution {shown(accuracy(variant, outside))} (base {shown(accuracy(base, outside))}); "
             f"format {100 * variant['sections']['in_distribution']['format_compliance']:.1f} %; "
             f"{variant['steps']} steps (base {base['steps']}); "
             + (f"no-signal groups {100 * zero:.0f} %" if zero is not None else "no step finished"))
