"""Benchmark of the builtin training engine; prints ONE JSON object.

    .venv/bin/python -m bench.bench_training            # full run (~10 min training + eval)
    .venv/bin/python -m bench.bench_training --quick    # short smoke run

Sections, all measured in the same process so comparisons share the machine's state:
* `peak`: dense matmul FLOP/s, float32 and bf16×bf16→f32 (the product types the model uses).
* `train_speed`: FLOP/s of the jitted `small` train step (6·N + attention FLOPs per token)
  against the dense matmul peak of the step's compute dtype: the highest peak seen at the start of
  the run or measured just before and after the step (the CPU is shared, so peaks drift).
* `generation_speed`: KV-cache decoding vs full re-forward greedy decoding, 128 new tokens.
* `quality`: `small` trained on dev-reasoning-v1 for a wall-clock budget, evaluated on eval-v1
  (accuracy and format per section and category).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from training.config import TrainConfig
from training.evaluate import summarize
from training.flops import measure_matmul_flops, train_flops_per_token
from training.generate import LoadedModel, generate_batch, greedy_reference, load_model, make_full_forward
from training.hooks import TrainHooks
from training.model import ModelConfig, create_model, model_config_for
from training.render import render_prompt, render_tunix_sft
from training.trainer import make_optimizer, make_train_step

QUALITY_CONFIG = {
    "model": "small",
    # 8 rather than 16: on the shared 2-core CPU a step of 8×256 tokens ran at least as many tokens/s,
    # so the 10-minute budget gets about twice the updates (one run each, under other load: 2,897
    # steps → 22 % in-distribution accuracy at 8, 966 steps → 15 % at 16; v2 generators).
    "batch_size": 8,
    "learning_rate": 4e-3,
    "warmup_steps": 40,
    "schedule": "cosine",
    "weight_decay": 0.01,
    "clip_norm": 1.0,
    "max_seq_len": 256,
    "seed": 0,
    "checkpoint_every": 0,
}
TRAIN_COUNT = 20_000
TRAIN_SEED = 1
BUDGET_SECONDS = 600.0
CALIBRATION_STEPS = 4
WIDTHS = ((128, 4, "bfloat16"), (256, 4, "bfloat16"), (512, 8, "bfloat16"), (1024, 16, "bfloat16"),
          (128, 4, "float32"), (256, 4, "float32"))
GEN_NEW_TOKENS = 128
GEN_BATCH = 8


def run_times(fn, repeats: int) -> list[float]:
    """Wall times of fn() over `repeats` runs after one warm-up (compile) run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def timed(fn, repeats: int) -> float:
    return statistics.median(run_times(fn, repeats))


def measure_bf16_matmul_flops(size: int = 1024, repeats: int = 10) -> float:
    a = jnp.ones((size, size), jnp.bfloat16)
    matmul = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    return 2.0 * size**3 / timed(lambda: matmul(a, a).block_until_ready(), repeats)


def measure_peaks() -> dict:
    return {"float32": measure_matmul_flops(1024, 1.0), "bfloat16": measure_bf16_matmul_flops(1024)}


def model_gemm_flops(model_cfg: ModelConfig, tokens: int, repeats: int) -> float:
    """FLOP/s of exactly the model's forward weight matmuls ([tokens, k] @ [k, n] per layer), alone:
    the best the step could do if nothing but its own GEMMs ran."""
    d, ff = model_cfg.d_model, model_cfg.d_ff
    shapes = [(d, 3 * d), (d, d), (d, 2 * ff), (ff, d)] * model_cfg.n_layers + [(d, model_cfg.vocab_size)]
    dtype = jnp.dtype(model_cfg.compute_dtype)
    xs = [jnp.ones((tokens, k), dtype) for k, _ in shapes]
    ws = [jnp.full((k, n), 0.01, dtype) for k, n in shapes]

    @jax.jit
    def gemms(xs, ws):
        return [jnp.dot(x, w, preferred_element_type=jnp.float32) for x, w in zip(xs, ws, strict=True)]

    flops = sum(2.0 * tokens * k * n for k, n in shapes)
    return flops / timed(lambda: jax.block_until_ready(gemms(xs, ws)), repeats)


def random_batch(config: TrainConfig, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shape = (config.grad_accum, config.batch_size, config.max_seq_len)
    return {
        "inputs": rng.integers(0, 256, shape, dtype=np.int32),
        "targets": rng.integers(0, 256, shape, dtype=np.int32),
        "loss_mask": np.ones(shape, np.float32),
    }


def bracketing_peaks(run_peaks: dict, before: dict, after: dict) -> dict:
    """Per dtype, the highest matmul peak seen at the start of the run or just before or after a
    measurement. Another process on the shared CPU can halve a peak for minutes; dividing by the
    highest one nearby keeps a quiet spell from flattering the fraction."""
    return {dtype: max(run_peaks[dtype], before[dtype], after[dtype]) for dtype in run_peaks}


def train_speed(config: TrainConfig, peaks: dict, repeats: int, model_cfg: ModelConfig | None = None) -> dict:
    """FLOP/s of the real jitted train step on a full random batch, against the matmul peak of the
    step's compute dtype (and, for reference, the float32 one), both measured around the step."""
    model_cfg = model_cfg or model_config_for(config.model)
    graphdef, params = nnx.split(create_model(model_cfg, config.seed))
    optimizer = make_optimizer(config)
    step = make_train_step(graphdef, optimizer)
    state = {"params": params, "opt": optimizer.init(params)}
    batch = random_batch(config)

    def run_step():
        state["params"], state["opt"], metrics = step(state["params"], state["opt"], batch)
        jax.block_until_ready(metrics["loss"])

    before = measure_peaks()
    times = run_times(run_step, repeats)
    peaks = bracketing_peaks(peaks, before, measure_peaks())
    seconds = statistics.median(times)
    tokens = config.examples_per_step * config.max_seq_len
    flops = train_flops_per_token(model_cfg, params, config.max_seq_len)
    achieved = flops["total"] * tokens / seconds
    peak = peaks[model_cfg.compute_dtype]
    own_gemms = model_gemm_flops(model_cfg, tokens, repeats)
    return {
        "model": config.model,
        "d_model": model_cfg.d_model,
        "n_layers": model_cfg.n_layers,
        "compute_dtype": model_cfg.compute_dtype,
        "tokens_per_step": tokens,
        "median_step_seconds": seconds,
        "fastest_step_seconds": min(times),
        "tokens_per_s": tokens / seconds,
        "flops_per_token": flops,
        "train_step_flops_per_s": achieved,
        "matmul_peak_flops_per_s": peak,
        "float32_matmul_peak_flops_per_s": peaks["float32"],
        "fraction_of_matmul_peak": achieved / peak,
        "fraction_of_float32_matmul_peak": achieved / peaks["float32"],
        "model_gemms_alone_flops_per_s": own_gemms,
        "fraction_of_model_gemms_alone": achieved / own_gemms,
        # The ceiling for this shape: its own GEMMs with nothing else running, against the peak.
        "model_gemms_alone_fraction_of_matmul_peak": own_gemms / peak,
        "target_fraction": 0.5,
    }


def generation_speed(loaded: LoadedModel, prompts: list[str], repeats: int) -> dict:
    """Both decoders produce exactly GEN_NEW_TOKENS tokens (stop tokens ignored) for one batch."""
    forward = make_full_forward(loaded.graphdef)
    kv_out, ref_out = [], []

    def kv():
        kv_out[:] = generate_batch(loaded, prompts, GEN_NEW_TOKENS, stop=False)

    def ref():
        ref_out[:] = greedy_reference(loaded, prompts, GEN_NEW_TOKENS, forward=forward, stop=False)

    kv_seconds, ref_seconds = timed(kv, repeats), timed(ref, max(1, repeats // 3))
    new_tokens = GEN_NEW_TOKENS * len(prompts)
    return {
        "batch": len(prompts),
        "new_tokens_per_prompt": GEN_NEW_TOKENS,
        "kv_cache_seconds": kv_seconds,
        "full_reforward_seconds": ref_seconds,
        "kv_cache_tokens_per_s": new_tokens / kv_seconds,
        "full_reforward_tokens_per_s": new_tokens / ref_seconds,
        "speedup": ref_seconds / kv_seconds,
        "outputs_identical": [g.token_ids for g in kv_out] == [g.token_ids for g in ref_out],
        "target_speedup": 10.0,
    }


class DeadlineHooks(TrainHooks):
    """Stops training at a wall-clock deadline (a safety net; max_steps is sized to finish first)."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.losses: list[float] = []

    def on_step(self, metrics: dict) -> None:
        self.losses.append(metrics["loss"])

    def should_cancel(self) -> bool:
        return time.monotonic() >= self.deadline

    def cancel_reason(self) -> str:
        return "time_budget"


def write_training_data(path: Path, count: int, seed: int) -> None:
    from training.generators import generate

    with open(path, "w", encoding="utf-8") as handle:
        for index, trace in enumerate(generate("dev-reasoning-v1", count=count, seed=seed).items):
            handle.write(json.dumps(render_tunix_sft(trace, f"dev-{index}")) + "\n")


def plan_steps(budget_seconds: float, fastest_step_seconds: float) -> int:
    """Steps for the budget at the fastest measured step plus ~10 % loop overhead (batch assembly,
    logging). On a shared CPU that is optimistic on purpose: if other load slows the run, the
    deadline hook stops it at the budget instead of leaving budget unused."""
    return max(10, int(budget_seconds / (1.1 * fastest_step_seconds)))


def quality(work: Path, budget_seconds: float, count: int, step_seconds: float,
            overrides: dict) -> tuple[dict, Path]:
    from training.engine import train
    from training.evaluate import evaluate
    from training.generators import generate

    data = work / "dev-reasoning-v1.jsonl"
    write_training_data(data, count, TRAIN_SEED)
    max_steps = plan_steps(budget_seconds, step_seconds)
    base = {**QUALITY_CONFIG, **overrides}
    config = TrainConfig.from_dict({**base, "max_steps": max_steps,
                                    "warmup_steps": min(base["warmup_steps"], max_steps // 5)})
    hooks = DeadlineHooks(time.monotonic() + budget_seconds)
    began = time.perf_counter()
    result = train(config, data, work / "run", hooks)
    train_seconds = time.perf_counter() - began
    items = generate("eval-v1").items
    report = evaluate(work / "run", items, max_new_tokens=200, batch_size=50)
    sections = {}
    for section in ("in_distribution", "out_of_distribution"):
        section_predictions = [p for p in report["predictions"] if p["section"] == section]
        summary = summarize(section_predictions)
        sections[section] = {
            "count": summary["count"],
            "answer_accuracy": summary["answer_accuracy"],
            "format_compliance": summary["format_compliance"],
            "by_category": summary["by_category"],
        }
    losses = hooks.losses
    return {
        "config": config.to_dict(),
        "train_examples": count,
        "status": result.status,
        "steps": result.steps_completed,
        "train_wall_seconds": train_seconds,
        "budget_seconds": budget_seconds,
        "first_10_mean_loss": sum(losses[:10]) / max(1, len(losses[:10])),
        "last_10_mean_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
        "tokens_per_s": result.manifest.get("throughput", {}).get("tokens_per_s"),
        "mfu": result.manifest.get("throughput", {}).get("mfu"),
        "eval_wall_seconds": report["summary"]["generation"]["wall_seconds"],
        "sections": sections,
        "targets": {"in_distribution_answer_accuracy": 0.9, "in_distribution_format_compliance": 0.99},
    }, work / "run"


def width_sweep(peaks: dict, repeats: int) -> list[dict]:
    """The same train step at growing widths (bf16, and float32 for the two smallest): the share of
    time outside matmuls (attention over T×T scores, norms, optimizer) shrinks as d grows, so the
    fraction of peak rises."""
    config = TrainConfig.from_dict({**QUALITY_CONFIG, "max_steps": 100})
    rows = []
    for d_model, n_heads, dtype in WIDTHS:
        model_cfg = ModelConfig(
            vocab_size=260, d_model=d_model, n_layers=4, n_heads=n_heads, d_ff=3 * d_model, compute_dtype=dtype,
        )
        row = train_speed(config, peaks, repeats, model_cfg)
        keys = ("d_model", "compute_dtype", "tokens_per_s", "train_step_flops_per_s", "fraction_of_matmul_peak",
                "fraction_of_float32_matmul_peak", "fraction_of_model_gemms_alone",
                "model_gemms_alone_fraction_of_matmul_peak")
        rows.append({key: row[key] for key in keys})
    return rows


def eval_prompts(count: int) -> list[str]:
    from training.generators import generate

    return [render_prompt(item["prompt"]) for item in generate("eval-v1").items[:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run: 60 s of training, fewer repeats")
    parser.add_argument("--budget-seconds", type=float, help="training wall-clock budget")
    parser.add_argument("--count", type=int, help="dev-reasoning-v1 training traces")
    parser.add_argument("--no-width-sweep", action="store_true", help="skip the train-step width sweep")
    parser.add_argument("--batch-size", type=int, help=f"override {QUALITY_CONFIG['batch_size']}")
    parser.add_argument("--learning-rate", type=float, help=f"override {QUALITY_CONFIG['learning_rate']}")
    args = parser.parse_args(argv)
    overrides = {key: value for key, value in (("batch_size", args.batch_size),
                                               ("learning_rate", args.learning_rate)) if value is not None}
    budget = args.budget_seconds or (60.0 if args.quick else BUDGET_SECONDS)
    count = args.count or (2_000 if args.quick else TRAIN_COUNT)
    repeats = 3 if args.quick else 6

    results: dict = {"benchmark": "training", "quick": args.quick, "device": str(jax.devices()[0]),
                     "note": "2-core CPU shared with other engineers; numbers move with their load"}
    results["peak"] = measure_peaks()
    speed_config = TrainConfig.from_dict({**QUALITY_CONFIG, **overrides, "max_steps": 100})
    results["train_speed"] = train_speed(speed_config, results["peak"], repeats)
    if not (args.quick or args.no_width_sweep):
        results["train_speed_by_width"] = width_sweep(results["peak"], 3)
    step_seconds = results["train_speed"]["fastest_step_seconds"]
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        results["quality"], run_dir = quality(Path(tmp), budget, count, step_seconds, overrides)
        loaded = load_model(run_dir)
        results["generation_speed"] = generation_speed(loaded, eval_prompts(GEN_BATCH), repeats)
    results["peak"]["bfloat16_note"] = "bf16 x bf16 -> f32 jnp.dot, 1024^3; float32 is the same size"
    sys.stdout.write(json.dumps(results, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
