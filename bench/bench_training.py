"""Benchmark of the builtin training engine; prints ONE JSON object.

    .venv/bin/python -m bench.bench_training                       # 10-minute budget per arm (~25 min)
    .venv/bin/python -m bench.bench_training --budget-minutes 40   # the nightly budget
    .venv/bin/python -m bench.bench_training --levers              # + one arm per lever, same budget
    .venv/bin/python -m bench.bench_training --quick               # smoke run, under a minute

Sections, all measured in the same process so comparisons share the machine's state:
* `peak`: dense matmul FLOP/s, float32 and bf16×bf16→f32 (the product types the model uses).
* `train_speed`: FLOP/s of the jitted `small` train step (6·N + attention FLOPs per token)
  against the dense matmul peak of the step's compute dtype: the highest peak seen at the start of
  the run or measured just before and after the step (the CPU is shared, so peaks drift).
* `data`: tokens per example with bytes and with the learned SentencePiece tokenizer, and the
  share of a step's positions that are padding with one example per row and with packing.
* `arms`: `small` trained for the same wall-clock budget per arm (tokenizer training and
  compilation included), evaluated on eval-v1 (accuracy and format per section and category).
  `final` is QUALITY_CONFIG on dev-reasoning-v2; `answer_only` trains on the same traces rendered
  without their reasoning; `--levers` adds the levers one at a time from the previous bench.
* `comparisons`: the show-your-work ablation side by side, and the lever curve.
* `generation_speed`: KV-cache decoding vs full re-forward greedy decoding of the final model.
* `rl`: what RL buys (bench.rl_arm): from the `final` checkpoint, the same budget again of more SFT and of
  GRPO with the judges as reward, both evaluated like the arms, with pass@8 of the starting checkpoint.
* `mesh_speed`: the real sharded train step (training.mesh: FSDP over every device) in two fresh
  processes of this run, one with 1 device and one with 8 virtual CPU devices (XLA_FLAGS): tokens/s of each
  and their ratio. Virtual devices share the host's cores, so on a CPU the ratio prices the sharding's
  collectives and bookkeeping; on a TPU or multi-GPU host the same step spreads over real chips.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from bench.report import QUICK, compare, figure
from training.config import TrainConfig
from training.evaluate import summarize
from training.flops import measure_matmul_flops, train_flops_per_token
from training.generate import LoadedModel, generate_batch, greedy_reference, load_model, make_full_forward
from training.hooks import TrainHooks
from training.mesh import describe, make_mesh, place_batch, shard_tree
from training.model import ModelConfig, create_model, model_config_for
from training.recipes import BEST_BUILTIN
from training.render import render_export_line, render_prompt, render_tunix_sft
from training.spm_tokenizer import QUOTED_WORD
from training.tokenizers import ByteTokenizer
from training.trainer import StepLayout, make_optimizer, make_train_step

# training.recipes.BEST_BUILTIN is the `final` arm (this bench found it); the arms below vary it.
QUALITY_CONFIG = {key: value for key, value in BEST_BUILTIN.items() if key != "backend"} | {"checkpoint_every": 0}
# The levers one at a time, each trained for the same budget; `final` is QUALITY_CONFIG as is.
ROWS_256 = {"max_seq_len": 256}
ARMS = {
    "byte_v1": {"what": "the previous bench: bytes, one example per row, dev-reasoning-v1",
                "dataset": "dev-reasoning-v1", "format": "tunix_sft",
                "config": {"tokenizer": "byte", "packing": False, **ROWS_256}},
    "spm_v1": {"what": "+ learned SentencePiece tokenizer", "dataset": "dev-reasoning-v1", "format": "tunix_sft",
               "config": {"packing": False, **ROWS_256}},
    "spm_packed_v1": {"what": "+ packing", "dataset": "dev-reasoning-v1", "format": "tunix_sft", "config": ROWS_256},
    "v2_256": {"what": "+ dev-reasoning-v2 traces (step by step strings, scratchpad arithmetic)",
               "dataset": "dev-reasoning-v2", "format": "tunix_sft", "config": ROWS_256},
    "final": {"what": "+ 384-token rows (keeps v2's longest traces, the wide-number ones, that 256 drops)",
              "dataset": "dev-reasoning-v2", "format": "tunix_sft", "config": {}},
    "answer_only": {"what": "final, trained on answers only (tunix_sft_answer_only)",
                    "dataset": "dev-reasoning-v2", "format": "tunix_sft_answer_only", "config": {}},
    "final_letters": {"what": "final, quoted words spelled one character per id (tokenizer spm_letters)",
                      "dataset": "dev-reasoning-v2", "format": "tunix_sft", "config": {"tokenizer": "spm_letters"}},
}
LEVER_ARMS = ("byte_v1", "spm_v1", "spm_packed_v1", "v2_256")
DATASETS = ("dev-reasoning-v1", "dev-reasoning-v2")
TRAIN_COUNT = 20_000
TRAIN_SEED = 1
BUDGET_MINUTES = 10.0
# Seconds of a budget spent before the first step: tokenizer training, tokenizing, compiling.
SETUP_SECONDS = 15.0
DATA_STATS_COUNT = 5_000
QUICK_BUDGET_SECONDS, QUICK_COUNT, QUICK_GEN_NEW_TOKENS = 4.0, 300, 16
QUICK_MESH = {"model": "tiny", "max_seq_len": 64}  # quick mode only checks the 1- vs 8-device step still runs
TARGETS = {"10_min": {"in_distribution_answer_accuracy": 0.6, "every_in_distribution_category": 0.4,
                      "in_distribution_format_compliance": 0.99, "out_of_distribution_answer_accuracy": 0.25},
           "40_min": {"in_distribution_answer_accuracy": 0.9}}
CALIBRATION_STEPS = 4
WIDTHS = ((128, 4, "bfloat16"), (256, 4, "bfloat16"), (512, 8, "bfloat16"), (1024, 16, "bfloat16"),
          (128, 4, "float32"), (256, 4, "float32"))
GEN_NEW_TOKENS = 128
GEN_BATCH = 8


@dataclasses.dataclass(frozen=True)
class Plan:
    """How an arm is sized and evaluated: items (None: all of eval-v1), new tokens, batch, and the
    step time assumed instead of measuring one (quick runs skip the calibration compile)."""

    eval_items: int | None = None
    eval_new_tokens: int = 256
    eval_batch: int = 50
    assumed_step_seconds: float | None = None


FULL_PLAN, QUICK_PLAN = Plan(), Plan(eval_items=20, eval_new_tokens=48, eval_batch=20, assumed_step_seconds=0.3)


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


def bracketing_peaks(run_peaks: dict, before: dict, after: dict) -> dict:
    """Per dtype, the highest matmul peak seen at the start of the run or just before or after a
    measurement. Another process on the shared CPU can halve a peak for minutes; dividing by the
    highest one nearby keeps a quiet spell from flattering the fraction."""
    return {dtype: max(run_peaks[dtype], before[dtype], after[dtype]) for dtype in run_peaks}


def random_step_runner(config: TrainConfig, model_cfg: ModelConfig, mesh=None):
    """A function running one real jitted train step of this model on a full random batch (its
    parameters and optimizer state carried from call to call), and the initial parameters. With a mesh,
    the trainer's sharded step: state laid out FSDP style, the batch split along the data axis."""
    graphdef, params = nnx.split(create_model(model_cfg, config.seed))
    optimizer = make_optimizer(config)
    state = {"params": params, "opt": optimizer.init(params)}
    batch = random_batch(config, model_cfg.vocab_size)
    if mesh is not None:
        state = {"params": shard_tree(state["params"], mesh), "opt": shard_tree(state["opt"], mesh)}
        batch = place_batch(batch, mesh, batch_dim=1)
    layout = None if mesh is None else StepLayout.of(mesh, state["params"], state["opt"])
    step = make_train_step(graphdef, optimizer, layout)

    def run_step():
        state["params"], state["opt"], metrics = step(state["params"], state["opt"], batch)
        jax.block_until_ready(metrics["loss"])

    return run_step, params


def train_speed(config: TrainConfig, peaks: dict, repeats: int, model_cfg: ModelConfig | None = None) -> dict:
    """FLOP/s of the real jitted train step on a full random batch, against the matmul peak of the
    step's compute dtype (and, for reference, the float32 one), both measured around the step."""
    model_cfg = model_cfg or model_config_for(config.model)
    run_step, params = random_step_runner(config, model_cfg)
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


MESH_DEVICES = 8


def mesh_step_speed(config: TrainConfig, repeats: int) -> dict:
    """In this process: tokens/s of the sharded train step on a mesh of every local device."""
    mesh = make_mesh()
    model_cfg = arm_model_config(config)
    run_step, _ = random_step_runner(config, model_cfg, mesh)
    seconds = statistics.median(run_times(run_step, repeats))
    return {"devices": len(jax.devices()), "mesh": describe(mesh), "median_step_seconds": seconds,
            "tokens_per_s": config.examples_per_step * config.max_seq_len / seconds}


def mesh_speed(config: TrainConfig, repeats: int) -> dict:
    """The same sharded step on 1 device and on MESH_DEVICES virtual CPU devices, each in its own process
    (the device count is fixed when JAX starts), one after the other in this run."""
    runs = {}
    for devices in (1, MESH_DEVICES):
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        if devices > 1:
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
        child = subprocess.run([sys.executable, "-m", "bench.bench_training", "--mesh-child",
                                json.dumps({"config": config.to_dict(), "repeats": repeats})],
                               env={**env, "JAX_PLATFORMS": "cpu"}, capture_output=True, text=True, timeout=900)
        if child.returncode != 0:
            raise RuntimeError(f"the {devices}-device train step failed: {child.stderr[-2000:]}")
        runs[devices] = json.loads(child.stdout.splitlines()[-1])
    one, many = runs[1], runs[MESH_DEVICES]
    return {"model": config.model, "tokens_per_step": config.examples_per_step * config.max_seq_len,
            "one_device": one, "eight_devices": many, "ratio_8_to_1": many["tokens_per_s"] / one["tokens_per_s"],
            "note": "virtual CPU devices share the host's cores: the ratio prices sharding, not scaling"}


def generation_speed(loaded: LoadedModel, prompts: list[str], repeats: int, new_tokens: int = GEN_NEW_TOKENS) -> dict:
    """Both decoders produce exactly `new_tokens` tokens (stop tokens ignored) for one batch."""
    forward = make_full_forward(loaded.graphdef)
    kv_out, ref_out = [], []

    def kv():
        kv_out[:] = generate_batch(loaded, prompts, new_tokens, stop=False)

    def ref():
        ref_out[:] = greedy_reference(loaded, prompts, new_tokens, forward=forward, stop=False)

    kv_seconds, ref_seconds = timed(kv, repeats), timed(ref, max(1, repeats // 3))
    total = new_tokens * len(prompts)
    return {
        "batch": len(prompts),
        "new_tokens_per_prompt": new_tokens,
        "kv_cache_seconds": kv_seconds,
        "full_reforward_seconds": ref_seconds,
        "kv_cache_tokens_per_s": total / kv_seconds,
        "full_reforward_tokens_per_s": total / ref_seconds,
        "speedup": ref_seconds / kv_seconds,
        "outputs_identical": [g.token_ids for g in kv_out] == [g.token_ids for g in ref_out],
        "target_speedup": 10.0,
    }


class DeadlineHooks(TrainHooks):
    """Stops training at a wall-clock deadline (a safety net; max_steps is sized to finish first)."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.losses: list[float] = []
        self.examples = 0

    def on_step(self, metrics: dict) -> None:
        self.losses.append(metrics["loss"])
        self.examples += metrics["examples"]

    def should_cancel(self) -> bool:
        return time.monotonic() >= self.deadline

    def cancel_reason(self) -> str:
        return "time_budget"


@functools.cache
def training_traces(dataset: str, count: int) -> list[dict]:
    from training.generators import generate

    return generate(dataset, count=count, seed=TRAIN_SEED).items


def write_training_data(path: Path, arm: dict, count: int) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for index, trace in enumerate(training_traces(arm["dataset"], count)):
            handle.write(json.dumps(render_export_line(arm["format"], trace, f"dev-{index}")) + "\n")
    return path


def arm_config(arm: dict, overrides: dict, max_steps: int = 100) -> TrainConfig:
    base = {**QUALITY_CONFIG, **arm["config"], **overrides}
    return TrainConfig.from_dict({**base, "max_steps": max_steps,
                                  "warmup_steps": min(base["warmup_steps"], max_steps // 5)})


def arm_model_config(config: TrainConfig) -> ModelConfig:
    """The model an arm trains; a learned tokenizer's size is taken as asked for (it is a soft limit)."""
    vocab = ByteTokenizer.vocab_size if config.tokenizer == "byte" else config.spm_vocab_size
    return dataclasses.replace(model_config_for(config.model), vocab_size=vocab)


def random_batch(config: TrainConfig, vocab_size: int = 256, seed: int = 0) -> dict:
    """A full batch of random tokens; packed configs also get positions and segments (4 per row)."""
    rng = np.random.default_rng(seed)
    shape = (config.grad_accum, config.batch_size, config.max_seq_len)
    batch = {
        "inputs": rng.integers(0, vocab_size, shape, dtype=np.int32),
        "targets": rng.integers(0, vocab_size, shape, dtype=np.int32),
        "loss_mask": np.ones(shape, np.float32),
    }
    if config.packing:
        quarter = config.max_seq_len // 4
        positions = np.arange(config.max_seq_len) % quarter
        batch["positions"] = np.broadcast_to(positions, shape).astype(np.int32)
        batch["segments"] = np.broadcast_to(np.arange(config.max_seq_len) // quarter + 1, shape).astype(np.int32)
    return batch


def step_seconds(config: TrainConfig) -> float:
    """Fastest of CALIBRATION_STEPS real train steps of this config on random tokens."""
    run_step, _ = random_step_runner(config, arm_model_config(config))
    return min(run_times(run_step, CALIBRATION_STEPS))


def plan_steps(budget_seconds: float, fastest_step_seconds: float) -> int:
    """Steps for the budget, less SETUP_SECONDS (tokenizer, examples, compilation), at the fastest
    measured step plus ~10 % loop overhead (batch assembly, logging). On a shared CPU that is
    optimistic on purpose: if other load slows the run, the deadline hook stops it at the budget
    instead of leaving budget unused."""
    return max(10, int((budget_seconds - SETUP_SECONDS) / (1.1 * fastest_step_seconds)))


def section_scores(predictions: list[dict]) -> dict:
    sections = {}
    for section in ("in_distribution", "out_of_distribution"):
        summary = summarize([p for p in predictions if p["section"] == section])
        sections[section] = {key: summary[key] for key in (
            "count", "answer_accuracy", "answer_accuracy_ci", "format_compliance", "by_category")}
    return sections


LETTERS_LINE, JOINED_LINE = re.compile(r"Letters: ([^\n<]*)"), re.compile(r"Joined: '?([^'\s<]*)")


def string_steps(predictions: list[dict]) -> dict:
    """Where the `string` items go wrong, step by step: the `Letters:` line that reads the quoted word
    (`1 k, 2 i, 3 t, 4 e`), and for the items whose answer is a word, the `Joined:` line that writes it."""
    items = [p for p in predictions if p["category"] == "string"]
    read = joined = words = 0
    for item in items:
        quoted = QUOTED_WORD.findall(item["prompt"])
        listed = LETTERS_LINE.search(item["output"])
        spelled = ", ".join(f"{i} {letter}" for i, letter in enumerate(quoted[-1], start=1)) if quoted else None
        read += bool(listed and listed.group(1).strip() == spelled)
        if not item["expected_answer"].isdigit():
            words += 1
            written = JOINED_LINE.search(item["output"])
            joined += bool(written and written.group(1) == item["expected_answer"])
    return {"items": len(items), "letters_line_right": read, "word_items": words, "joined_word_right": joined}


def train_arm(work: Path, name: str, budget_seconds: float, count: int, overrides: dict,
              plan: Plan) -> tuple[dict, Path]:
    """Train one arm for the budget (tokenizer training and compilation included) and evaluate it."""
    from training.engine import train
    from training.evaluate import evaluate
    from training.generators import generate

    arm = ARMS[name]
    data = write_training_data(work / f"{name}.jsonl", arm, count)
    seconds = plan.assumed_step_seconds or step_seconds(arm_config(arm, overrides))
    max_steps = plan_steps(budget_seconds, seconds)
    config = arm_config(arm, overrides, max_steps)
    hooks = DeadlineHooks(time.monotonic() + budget_seconds)
    began = time.perf_counter()
    result = train(config, data, work / name, hooks)
    train_seconds = time.perf_counter() - began
    items = generate("eval-v1").items[:plan.eval_items]
    report = evaluate(work / name, items, max_new_tokens=plan.eval_new_tokens, batch_size=plan.eval_batch)
    with open(work / name / "predictions.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(prediction) + "\n" for prediction in report["predictions"])
    manifest, losses = result.manifest, hooks.losses
    return {
        "arm": name, **{key: arm[key] for key in ("dataset", "format", "what")},
        "config": config.to_dict(), "train_examples": count, "status": result.status,
        "steps": result.steps_completed, "examples_seen": hooks.examples,
        "epochs": round(hooks.examples / manifest["data"]["examples"], 2),
        "train_wall_seconds": train_seconds, "budget_seconds": budget_seconds,
        "tokens_per_example": manifest["data"]["tokens_per_example"],
        "padding_fraction": manifest["data"]["padding_fraction"],
        "vocab_size": manifest["model"]["vocab_size"],
        "first_10_mean_loss": sum(losses[:10]) / max(1, len(losses[:10])),
        "last_10_mean_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
        "tokens_per_s": manifest.get("throughput", {}).get("tokens_per_s"),
        "eval_wall_seconds": report["summary"]["generation"]["wall_seconds"],
        "sections": section_scores(report["predictions"]),
        "string_steps": string_steps(report["predictions"]),
    }, work / name


def data_efficiency(count: int, max_seq_len: int, datasets: tuple[str, ...] = DATASETS) -> dict:
    """Tokens per example (bytes vs the learned tokenizer, with and without spelled quoted words) and the
    share of padding a step computes without and with packing, per training set; no training."""
    from training.data import build_examples
    from training.packing import StepBatches
    from training.tokenizers import run_tokenizer

    result = {}
    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tmp:
        for dataset in datasets:
            rows = [render_tunix_sft(trace, str(i)) for i, trace in enumerate(training_traces(dataset, count))]
            per_tokenizer = {}
            for kind in ("byte", "spm", "spm_letters"):
                tokenizer = run_tokenizer(kind, QUALITY_CONFIG["spm_vocab_size"], rows, Path(tmp), False)
                examples, stats = build_examples(rows, tokenizer, max_seq_len)
                per_tokenizer[kind] = {
                    "tokens_per_example": stats["tokens_per_example"], "dropped_too_long": stats["dropped_too_long"],
                    **{f"padding_fraction_{mode}": round(StepBatches(
                        examples, "h", 0, 8, 1, tokenizer.pad_id, packed).padding_fraction(), 4)
                        for mode, packed in (("plain", False), ("packed", True))}}
            per_tokenizer["spm_vs_byte_token_ratio"] = round(
                per_tokenizer["byte"]["tokens_per_example"] / per_tokenizer["spm"]["tokens_per_example"], 2)
            result[dataset] = per_tokenizer
    return {"train_examples": count, "max_seq_len": max_seq_len, "datasets": result}


def accuracy_row(arm: dict) -> dict:
    return {key: arm[key] for key in ("arm", "what", "steps", "examples_seen", "epochs", "tokens_per_example",
                                      "padding_fraction")} | {
        section: arm["sections"][section]["answer_accuracy"] for section in arm["sections"]}


def width_sweep(peaks: dict, repeats: int) -> list[dict]:
    """The same train step at growing widths (bf16, and float32 for the two smallest): the share of
    time outside matmuls (attention over T×T scores, norms, optimizer) shrinks as d grows, so the
    fraction of peak rises."""
    config = TrainConfig.from_dict({**QUALITY_CONFIG, "tokenizer": "byte", "packing": False, "max_steps": 100})
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run under a minute: seconds of training")
    parser.add_argument("--budget-minutes", type=float, default=BUDGET_MINUTES,
                        help="training wall-clock budget of each arm (10; 40 for the nightly run)")
    parser.add_argument("--budget-seconds", type=float, help="the budget in seconds (overrides --budget-minutes)")
    parser.add_argument("--count", type=int, help=f"training traces per arm (default {TRAIN_COUNT})")
    parser.add_argument("--levers", action="store_true",
                        help=f"also train {', '.join(LEVER_ARMS)} for the same budget: what each lever buys")
    parser.add_argument("--arms", help="comma-separated arms to train instead (of " + ", ".join(ARMS) + ")")
    parser.add_argument("--keep-runs", help="train into this folder and keep the runs and their predictions")
    parser.add_argument("--no-width-sweep", action="store_true", help="skip the train-step width sweep")
    parser.add_argument("--no-speed", action="store_true", help="skip peaks, train and generation speed")
    parser.add_argument("--batch-size", type=int, help=f"override {QUALITY_CONFIG['batch_size']}")
    parser.add_argument("--learning-rate", type=float, help=f"override {QUALITY_CONFIG['learning_rate']}")
    parser.add_argument("--max-seq-len", type=int, help=f"override {QUALITY_CONFIG['max_seq_len']}")
    parser.add_argument("--spm-vocab-size", type=int, help=f"override {QUALITY_CONFIG['spm_vocab_size']}")
    parser.add_argument("--no-mesh", action="store_true", help="skip the 1- vs 8-device train step")
    parser.add_argument("--no-rl", action="store_true", help="skip the RL arm (more SFT vs GRPO from `final`)")
    parser.add_argument("--grpo", action="append", default=[], metavar="KEY=VALUE",
                        help="override a GRPO setting of the RL arm (group_size, temperature, beta, learning_rate…)")
    parser.add_argument("--rl-select", type=int, default=0, metavar="N",
                        help="GRPO trains only on those of N training prompts the start answers right sometimes")
    parser.add_argument("--grpo-variant", action="append", default=[], type=_json_object, metavar="JSON",
                        help="one more GRPO arm from the same start and budget with these settings over the base "
                             "ones, e.g. '{\"beta\": 0}' or '{\"reward\": {\"judges\": {\"answer_exact\": 1}}}'")
    parser.add_argument("--mesh-child", help=argparse.SUPPRESS)  # one device count of mesh_speed
    return parser.parse_args(argv)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object of GRPO settings")
    return value


def chosen_arms(args: argparse.Namespace) -> list[str]:
    if args.arms:
        return args.arms.split(",")
    return [*(LEVER_ARMS if args.levers else ()), "final", "answer_only"]


def speed_sections(results: dict, args: argparse.Namespace, overrides: dict, repeats: int) -> None:
    results["peak"] = measure_peaks()
    speed_config = arm_config(ARMS["final"], overrides)
    results["train_speed"] = train_speed(speed_config, results["peak"], repeats, arm_model_config(speed_config))
    if not (args.quick or args.no_width_sweep):
        results["train_speed_by_width"] = width_sweep(results["peak"], 3)
    results["peak"]["bfloat16_note"] = "bf16 x bf16 -> f32 jnp.dot, 1024^3; float32 is the same size"


def comparisons(arms: dict) -> dict:
    """The ablation (the same traces with and without their work) and the lever curve, side by side."""
    out = {"levers": [accuracy_row(arms[name]) for name in (*LEVER_ARMS, "final", "final_letters") if name in arms]}
    if "final" in arms and "answer_only" in arms:
        show, bare = (arms[name]["sections"] for name in ("final", "answer_only"))
        out["show_your_work"] = {section: {
            "with_reasoning": show[section]["answer_accuracy"], "answer_only": bare[section]["answer_accuracy"],
            "by_category": {category: [scores["answer_accuracy"],
                                       bare[section]["by_category"].get(category, {}).get("answer_accuracy")]
                            for category, scores in show[section]["by_category"].items()},
        } for section in show}
    return out


QUALITY_ISSUE, ENGINE_ISSUE = "#15 model quality", "#4 training engine"


def _percent(share: float | None) -> float | None:
    return None if share is None else 100 * share


def quality_figures(arms: dict, budget_seconds: float) -> list[dict]:
    """The issue's quality figures for the trained arm (`final`, else the first): accuracy in and out of
    distribution, the weakest category and format compliance, each against the target of its budget
    (10 minutes; 40 minutes for the nightly budget; none at other budgets), with the answer-only and the
    previous bench's arm (byte_v1) as the comparisons when they were trained in the same run."""
    name = "final" if "final" in arms else next(iter(arms))
    minutes = budget_seconds / 60
    targets = TARGETS["40_min"] if minutes >= 40 else TARGETS["10_min"] if abs(minutes - 10) < 0.5 else {}
    inside, outside = (arms[name]["sections"][section] for section in ("in_distribution", "out_of_distribution"))
    label = f"{name}, {minutes:g}-min budget" if budget_seconds >= 60 else f"{name}, {budget_seconds:g}-s budget"

    def target(key):
        return (">=", 100 * targets[key]) if key in targets else None

    def versus(section):
        for other, what in (("answer_only", "the same traces without their reasoning"),
                            ("byte_v1", "the previous bench (bytes, unpacked, v1 traces)")):
            if other in arms and other != name:
                return compare(what, _percent(arms[other]["sections"][section]["answer_accuracy"]), "%")
        return None

    weakest = min(inside["by_category"].items(), key=lambda item: item[1]["answer_accuracy"], default=None)
    return [
        figure(QUALITY_ISSUE, f"eval-v1 in-distribution answer accuracy ({label})",
               _percent(inside["answer_accuracy"]), "%", target=target("in_distribution_answer_accuracy"),
               comparison=versus("in_distribution"), note=f"95% CI {inside['answer_accuracy_ci']}"),
        figure(QUALITY_ISSUE, "weakest in-distribution category" + (f" ({weakest[0]})" if weakest else ""),
               _percent(weakest[1]["answer_accuracy"]) if weakest else None, "%",
               target=target("every_in_distribution_category")),
        figure(QUALITY_ISSUE, "in-distribution format compliance", _percent(inside["format_compliance"]), "%",
               target=target("in_distribution_format_compliance")),
        figure(QUALITY_ISSUE, "eval-v1 out-of-distribution answer accuracy", _percent(outside["answer_accuracy"]),
               "%", target=target("out_of_distribution_answer_accuracy"), comparison=versus("out_of_distribution")),
        *[figure(QUALITY_ISSUE, f"arm {other}: in-distribution answer accuracy", _percent(
            arm["sections"]["in_distribution"]["answer_accuracy"]), "%", note=arm["what"])
          for other, arm in arms.items() if other != name],
    ]


def speed_figures(results: dict) -> list[dict]:
    """The engine's speed figures: the train step against the matmul peak, and KV-cache decoding."""
    out = []
    if speed := results.get("train_speed"):
        out += [
            figure(ENGINE_ISSUE, "train step, share of the bf16 matmul peak", 100 * speed["fraction_of_matmul_peak"],
                   "%", target=(">=", 50), comparison=compare(
                       "the model's own GEMMs alone", 100 * speed["model_gemms_alone_fraction_of_matmul_peak"], "%")),
            figure(ENGINE_ISSUE, f"train step throughput ({speed['model']}, {speed['tokens_per_step']} tokens)",
                   speed["tokens_per_s"], "tokens/s"),
        ]
    if mesh := results.get("mesh_speed"):
        out.append(figure(ENGINE_ISSUE, f"train step tokens/s on {MESH_DEVICES} virtual CPU devices vs 1 "
                                        f"({mesh['model']}, sharded)", mesh["ratio_8_to_1"], "x",
                          comparison=compare("1 device", mesh["one_device"]["tokens_per_s"], "tokens/s"),
                          note=f"{mesh['eight_devices']['tokens_per_s']:,.0f} tokens/s on {MESH_DEVICES}; "
                               + mesh["note"]))
    if generation := results.get("generation_speed"):
        out.append(figure(ENGINE_ISSUE, "KV-cache decoding speed-up over full re-forward", generation["speedup"], "x",
                          target=(">=", 10), comparison=compare(
                              "full re-forward", generation["full_reforward_tokens_per_s"], "tokens/s"),
                          note="outputs identical" if generation["outputs_identical"] else "OUTPUTS DIFFER"))
    return out


def grpo_overrides(pairs: list[str]) -> dict:
    """`--grpo key=value` pairs, each value read as JSON when it parses (numbers), else kept as text."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--grpo {pair!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _checked_variants(args: argparse.Namespace, base_overrides: dict) -> list[dict]:
    """The `--grpo-variant` settings, each checked as the full GRPO config it makes before anything trains."""
    if not args.grpo_variant:
        return []
    from bench.rl_arm import check_variants
    from training.config import ConfigError

    try:
        return check_variants(args.grpo_variant, args.quick, base_overrides)
    except ConfigError as exc:
        raise SystemExit(f"--grpo-variant: {exc.errors}") from exc


def _rl_figures(results: dict) -> list[dict]:
    from bench.rl_arm import rl_figures

    return rl_figures(results["rl"], results.get("generation_speed")) if "rl" in results else []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.mesh_child:
        spec = json.loads(args.mesh_child)
        sys.stdout.write(json.dumps(mesh_step_speed(TrainConfig.from_dict(spec["config"]), spec["repeats"])) + "\n")
        return 0
    args.quick = args.quick or QUICK  # `python -m bench --quick` asks through the environment
    grpo = grpo_overrides(args.grpo)
    variants = _checked_variants(args, grpo)
    overrides = {key: value for key, value in (
        ("batch_size", args.batch_size), ("learning_rate", args.learning_rate), ("max_seq_len", args.max_seq_len),
        ("spm_vocab_size", args.spm_vocab_size)) if value is not None}
    budget = args.budget_seconds or (QUICK_BUDGET_SECONDS if args.quick else args.budget_minutes * 60)
    count = args.count or (QUICK_COUNT if args.quick else TRAIN_COUNT)
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    results: dict = {"benchmark": "training", "quick": args.quick, "device": str(jax.devices()[0]),
                     "budget_seconds_per_arm": budget,
                     "note": "2-core CPU shared with other engineers; numbers move with their load"}
    if not (args.quick or args.no_speed):
        speed_sections(results, args, overrides, repeats=6)
    if not (args.no_speed or args.no_mesh):
        mesh_config = arm_config(ARMS["final"], {**overrides, **(QUICK_MESH if args.quick else {})})
        results["mesh_speed"] = mesh_speed(mesh_config, 2 if args.quick else 6)
    max_seq_len = overrides.get("max_seq_len", QUALITY_CONFIG["max_seq_len"])
    datasets = tuple(sorted({ARMS[name]["dataset"] for name in chosen_arms(args)}))
    results["data"] = data_efficiency(min(count, DATA_STATS_COUNT), max_seq_len, datasets)
    arms, run_dirs = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        work = Path(args.keep_runs or tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in chosen_arms(args):
            arms[name], run_dirs[name] = train_arm(work, name, budget, count, overrides, plan)
        if not args.no_speed:
            loaded = load_model(run_dirs.get("final") or next(iter(run_dirs.values())))
            new_tokens = QUICK_GEN_NEW_TOKENS if args.quick else GEN_NEW_TOKENS
            results["generation_speed"] = generation_speed(loaded, eval_prompts(GEN_BATCH), 1 if args.quick else 6,
                                                           new_tokens)
        if "final" in arms and not args.no_rl:
            from bench.rl_arm import rl_section

            results["rl"] = rl_section(work, run_dirs["final"], arms["final"], budget, count, overrides, plan,
                                       args.quick, grpo, args.rl_select, variants)
    results["arms"] = arms
    results["comparisons"] = comparisons(arms)
    results["targets"] = TARGETS
    results["figures"] = [*quality_figures(arms, budget), *speed_figures(results), *_rl_figures(results)]
    sys.stdout.write(json.dumps(results, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
