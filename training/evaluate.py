"""Evaluate a trained run on eval items with the real judges (SPEC §5).

Each eval item `{id, prompt, expected_answer, category, difficulty, section}` is rendered with the
one chat renderer, generated greedily (KV cache), and judged with `training.judges`: answer
accuracy (`answer_exact`), format compliance (`format_ok`) and the reasoning's arithmetic
(`reasoning_checks`), overall and per category, section and difficulty, with Wilson and bootstrap
intervals of the accuracy.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from training.render import render_prompt
from training.run_files import RUN_CONFIG_FILE, context_length, read_json

GROUP_KEYS = ("category", "section", "difficulty")


def _rate(predictions: list[dict], key: str) -> float | None:
    known = [p[key] for p in predictions if p.get(key) is not None]
    return sum(known) / len(known) if known else None


def _rates(predictions: list[dict]) -> dict:
    return {
        "count": len(predictions),
        "answer_accuracy": _rate(predictions, "correct"),
        "format_compliance": _rate(predictions, "format_ok"),
        "reasoning_check_rate": _rate(predictions, "reasoning_ok"),
    }


def summarize(predictions: list[dict]) -> dict:
    """Rates overall and per category, section and difficulty, with 95 % intervals of the answer
    accuracy: `answer_accuracy_ci` is the Wilson score interval (named by `answer_accuracy_ci_method`;
    the one the leaderboard shows) and `answer_accuracy_bootstrap_ci` the seeded bootstrap beside it
    (see training.stats)."""
    from training.stats import bootstrap_ci, wilson_interval

    summary = _rates(predictions)
    correct = [float(p["correct"]) for p in predictions]
    interval = wilson_interval(int(sum(correct)), len(correct))
    bootstrap = bootstrap_ci(correct)
    summary["answer_accuracy_ci"] = list(interval) if interval else None
    summary["answer_accuracy_ci_method"] = "wilson"
    summary["answer_accuracy_bootstrap_ci"] = list(bootstrap) if bootstrap else None
    for key in GROUP_KEYS:
        groups: dict[str, list[dict]] = defaultdict(list)
        for prediction in predictions:
            groups[str(prediction.get(key))].append(prediction)
        summary[f"by_{key}"] = {name: _rates(items) for name, items in sorted(groups.items())}
    known = [p["stopped"] for p in predictions if p["stopped"] is not None]
    summary["stopped_rate"] = sum(known) / len(known) if known else None
    return summary


def judge(item: dict, output: str) -> dict:
    """The deterministic judges of SPEC §5 on one output (versions in judges.JUDGE_VERSIONS)."""
    from training import judges

    checks = judges.reasoning_checks(output)
    return {
        "extracted_answer": judges.extract_answer(output),
        "correct": bool(judges.answer_exact(output, item["expected_answer"])),
        "format_ok": bool(judges.format_ok(output)),
        "reasoning_ok": bool(checks["ok"]),
        "reasoning": {"claims": checks["claims"], "false": checks["false"]},
    }


def _builtin_texts(out_dir: Path, prompts: list[str], max_new_tokens: int, temperature: float, seed: int,
                   batch_size: int, step: int | None = None):
    """Yields (start index, generations, seconds) batch by batch."""
    from training.generate import generate_batch, load_model, prompt_length

    loaded = load_model(out_dir, step)
    shared_len = prompt_length(loaded, prompts)
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        began = time.perf_counter()
        generations = generate_batch(loaded, chunk, max_new_tokens, temperature, seed + start, batch_size,
                                     prompt_len=shared_len)
        yield start, generations, time.perf_counter() - began


@dataclass
class TextGeneration:
    """What the tunix backend returns per prompt: text only, so stopping is unknown."""

    text: str
    token_ids: list = field(default_factory=list)
    stopped: bool | None = None


def _tunix_texts(out_dir: Path, prompts: list[str], max_new_tokens: int, temperature: float, seed: int,
                 batch_size: int, step: int | None = None):
    from training.backends import tunix_backend
    from training.checkpoints import CheckpointStore

    latest = CheckpointStore(out_dir, read_only=True).latest_step()
    if step is not None and step != latest:
        raise ValueError(f"The tunix backend evaluates its latest checkpoint ({latest}), not step {step}.")

    for start in range(0, len(prompts), batch_size):
        began = time.perf_counter()
        chunk = prompts[start : start + batch_size]
        texts = tunix_backend.generate(out_dir, chunk, max_new_tokens, temperature, seed + start)
        yield start, [TextGeneration(text) for text in texts], time.perf_counter() - began


def _run_config(out_dir: Path) -> dict:
    path = out_dir / RUN_CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{out_dir} is not a training run folder: {RUN_CONFIG_FILE} is missing.")
    return read_json(path)


def evaluate_stream(model_dir_or_out_dir: str | Path, eval_items: list[dict], *, max_new_tokens: int | None = None,
                    temperature: float = 0.0, seed: int = 0, batch_size: int = 16, step: int | None = None):
    """Yields one list of judged predictions per generated batch, in item order.

    Per-item latency is its batch's wall time divided by the batch size (items run batched). `step`
    picks a checkpoint (default: the latest)."""
    out_dir = Path(model_dir_or_out_dir)
    if not eval_items:
        raise ValueError("No eval items to evaluate.")
    run_config = _run_config(out_dir)
    max_new_tokens = max_new_tokens or context_length(run_config)
    generate_batches = _tunix_texts if run_config.get("backend") == "tunix" else _builtin_texts
    prompts = [render_prompt(item["prompt"]) for item in eval_items]
    for start, generations, seconds in generate_batches(out_dir, prompts, max_new_tokens, temperature, seed,
                                                        batch_size, step):
        items = eval_items[start : start + len(generations)]
        yield [_prediction(item, generation, seconds / batch_size)
               for item, generation in zip(items, generations, strict=True)]


def evaluate(model_dir_or_out_dir: str | Path, eval_items: list[dict], *, max_new_tokens: int | None = None,
             temperature: float = 0.0, seed: int = 0, batch_size: int = 16, step: int | None = None) -> dict:
    """Generate for every item and judge it: `{"predictions": [...], "summary": {...}}`."""
    began = time.perf_counter()
    predictions = [prediction for batch in evaluate_stream(
        model_dir_or_out_dir, eval_items, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
        batch_size=batch_size, step=step) for prediction in batch]
    summary = summarize(predictions)
    max_new_tokens = max_new_tokens or context_length(_run_config(Path(model_dir_or_out_dir)))
    summary["generation"] = {
        "max_new_tokens": max_new_tokens, "temperature": temperature, "seed": seed, "batch_size": batch_size,
        "wall_seconds": time.perf_counter() - began,
    }
    return {"predictions": predictions, "summary": summary}


def _prediction(item: dict, generation, latency_s: float) -> dict:
    return {
        "id": item.get("id"),
        "prompt": item["prompt"],
        "expected_answer": item["expected_answer"],
        "category": item.get("category"),
        "section": item.get("section"),
        "difficulty": item.get("difficulty"),
        "output": generation.text,
        "tokens": len(generation.token_ids) if generation.token_ids else None,
        "stopped": generation.stopped,
        "latency_s": latency_s,
        **judge(item, generation.text),
    }
