# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Teaching a model to show its work: a tunix-rt submission
#
# The judges of this competition read the model's *reasoning*, not only its answer. So everything here
# is built around one output format,
#
# ```
# <reasoning>step by step, every intermediate value written down</reasoning><answer>the bare answer</answer>
# ```
#
# and around measuring two things honestly: does the model keep that format (format compliance), and is
# the answer right (answer accuracy on a held-out eval set whose prompts never appear in training).
#
# **Strategy.** Supervised fine-tuning on curated reasoning traces: each trace is a prompt, a list of
# steps that compute real intermediate values (and a step that checks the result), and a final answer.
# The loss is taken only on the completion (the reasoning, the answer and the end-of-turn token), never
# on the prompt, so the model learns to *produce* reasoning rather than to echo questions, and it learns
# to stop. On a TPU the model is Gemma through Google's Tunix library; anywhere else the same pipeline
# trains tunix-rt's small built-in transformer from scratch, which is how this notebook is tested.
#
# This notebook talks to a tunix-rt server only over its REST API (optional): it can pull a curated,
# content-hashed dataset version, and push the trained run, its metrics and its evaluation back so they
# appear on the server's leaderboard next to everything else.

# %% [markdown]
# ## 1. Configuration
#
# `SMOKE=1` runs the whole notebook on a CPU in about a minute (a tiny model, a few steps, a few eval
# items): that is what the project's tests run. The server settings come from environment variables or,
# on Kaggle, from secrets (`TUNIXRT_URL`, `TUNIXRT_API_KEY`); without them the notebook works offline.

# %%
import json
import os
import sys
import time
from pathlib import Path


def _repo_root() -> Path:
    """Where `training/` lives: next to this notebook's folder, or TUNIXRT_SRC (a Kaggle dataset of the repo)."""
    for candidate in (os.environ.get("TUNIXRT_SRC"), Path.cwd().parent, Path.cwd(), "/kaggle/input/tunix-rt"):
        if candidate and (Path(candidate) / "training" / "__init__.py").exists():
            return Path(candidate).resolve()
    raise RuntimeError("Cannot find the tunix-rt `training` package; set TUNIXRT_SRC to the repository folder.")


sys.path.insert(0, str(_repo_root()))


def _secret(name: str) -> str:
    value = os.environ.get(name, "")
    if value:
        return value
    try:  # On Kaggle, secrets are attached to the notebook.
        from kaggle_secrets import UserSecretsClient

        return UserSecretsClient().get_secret(name) or ""
    except Exception:  # noqa: BLE001 - not on Kaggle, or no such secret
        return ""


SMOKE = os.environ.get("SMOKE") == "1"
OUTPUT_DIR = Path("/kaggle/working" if Path("/kaggle/working").is_dir() else os.environ.get("OUTPUT_DIR", "output"))
SERVER_URL = _secret("TUNIXRT_URL").rstrip("/")
API_KEY = _secret("TUNIXRT_API_KEY")
DATASET_ID = os.environ.get("DATASET_ID", "dev-reasoning-v1")  # pulled from the server when it is configured
PUSH_RESULTS = bool(SERVER_URL and API_KEY) and os.environ.get("PUSH", "1") == "1"
GEMMA_DIR = Path(os.environ.get("GEMMA_DIR", "/kaggle/input/gemma-3/transformers/gemma-3-1b-it/1"))
OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
print(f"smoke={SMOKE} output={OUTPUT_DIR} server={'configured' if SERVER_URL else 'none (offline)'}")

# %% [markdown]
# ## 2. The data
#
# Two sources, same format. With a server configured the notebook pulls a frozen dataset version: the
# exact traces curators approved in tunix-rt's admin, as `tunix_sft` lines (`prompt` is the Gemma chat
# prefix, `completion` is `<reasoning>…</reasoning><answer>…</answer><end_of_turn>`), together with its
# content hash, so the run is tied to the bytes it trained on. Offline, the same generators that built
# that dataset produce it locally: multi-step word problems whose steps compute real values and verify the
# result, and structured tasks (arithmetic, comparisons, string transforms, simple logic).

# %%
import urllib.request

from training.generators import generate
from training.render import render_tunix_sft

DATA_PATH = OUTPUT_DIR / "train.tunix_sft.jsonl"


def _get(path: str) -> tuple[bytes, dict]:
    request = urllib.request.Request(SERVER_URL + path, headers={"Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the configured server
        return response.read(), dict(response.headers)


if SERVER_URL and API_KEY:
    body, headers = _get(f"/api/datasets/{DATASET_ID}/export.jsonl?format=tunix_sft&split=train")
    DATA_PATH.write_bytes(body)
    DATASET = {"id": headers["X-Dataset-Id"], "content_hash": headers["X-Dataset-Content-Hash"]}
    print(f"pulled {DATASET['id']} ({DATASET['content_hash'][:16]}…) from the server")
else:
    generated = generate("dev-reasoning-v1", count=200 if SMOKE else None)
    with open(DATA_PATH, "w", encoding="utf-8") as handle:
        for index, trace in enumerate(generated.items):
            handle.write(json.dumps(render_tunix_sft(trace, f"local-{index}")) + "\n")
    DATASET = {"id": None, "content_hash": None}
    print(f"generated {len(generated.items)} traces locally")

rows = [json.loads(line) for line in DATA_PATH.open(encoding="utf-8")]
print(f"{len(rows)} training examples; one of them:\n")
print(rows[0]["prompt"] + rows[0]["completion"])

# %% [markdown]
# ## 3. Model and hyperparameters
#
# On a TPU with Gemma weights attached as a Kaggle input (*Add input → Models → Gemma 3 1B*), the `tunix`
# backend fine-tunes Gemma with Tunix's trainer (LoRA through qwix keeps memory small); the tokenizer is
# Gemma's own SentencePiece model from the same folder, and nothing is downloaded. Anywhere else the
# `builtin` backend trains tunix-rt's small decoder from scratch on bytes.
#
# The choices, and why:
# - **Completion-only loss**: the prompt and the padding are masked; the end-of-turn token is part of the
#   target, which is what teaches the model to stop.
# - **max_seq_len 256** for the built-in model: every generated example fits, and longer rows would be padding.
# - **learning rate 4e-3 with warmup and cosine decay** for the small model (measured best in tunix-rt's
#   training benchmark); Gemma with LoRA uses a smaller rate.
# - **Checkpoints** every few hundred steps: a preempted Kaggle session resumes from the last one with
#   exactly the losses an uninterrupted run would have had.

# %%
def _on_tpu() -> bool:
    try:
        import jax

        return jax.devices()[0].platform == "tpu"
    except Exception:  # noqa: BLE001 - no JAX backend at all
        return False


if not SMOKE and _on_tpu() and GEMMA_DIR.is_dir():
    CONFIG = {"backend": "tunix", "model": "gemma3-1b", "model_dir": str(GEMMA_DIR), "max_steps": 600,
              "batch_size": 8, "learning_rate": 2e-4, "warmup_steps": 30, "max_seq_len": 512,
              "checkpoint_every": 200, "lora": {"rank": 16, "alpha": 32.0}, "seed": 0}
elif SMOKE:
    CONFIG = {"backend": "builtin", "model": "tiny", "max_steps": 30, "batch_size": 8, "learning_rate": 3e-3,
              "warmup_steps": 5, "max_seq_len": 256, "checkpoint_every": 30, "seed": 0}
else:
    CONFIG = {"backend": "builtin", "model": "small", "max_steps": 2000, "batch_size": 16, "learning_rate": 4e-3,
              "warmup_steps": 40, "max_seq_len": 256, "checkpoint_every": 500, "seed": 0}
print(json.dumps(CONFIG, indent=2))

# %% [markdown]
# ## 4. Training
#
# One call trains (or resumes) into the run folder and prints progress; the run folder then holds the
# checkpoints, `metrics.jsonl` (loss, learning rate, gradient norm and tokens/s at every step) and
# `run_manifest.json` (config and its hash, the data's hash, seed, code version, device, timings).

# %%
from training.engine import train
from training.hooks import TrainHooks

RUN_DIR = OUTPUT_DIR / "run"


class Progress(TrainHooks):
    def __init__(self, total: int):
        self.total, self.started = total, time.monotonic()

    def on_step(self, metrics: dict) -> None:
        step = metrics["step"]
        if step == 1 or step % max(self.total // 10, 1) == 0 or step == self.total:
            print(f"step {step:>5}/{self.total}  loss {metrics['loss']:.4f}  "
                  f"{metrics.get('tokens_per_s', 0):,.0f} tok/s  {time.monotonic() - self.started:,.0f}s")


result = train(CONFIG, DATA_PATH, RUN_DIR, Progress(CONFIG["max_steps"]))
print(f"{result.status}: {result.steps_completed} steps, final loss {result.final_loss:.4f}")

# %% [markdown]
# ## 5. Evaluation
#
# The model answers every item of `eval-v1`, a held-out set generated from seeds no training trace uses
# (its in-distribution section asks the same kinds of questions with new numbers and names; its
# out-of-distribution section uses bigger numbers and new wordings). The judges are deterministic:
# `answer_exact` compares the extracted `<answer>` after normalising numbers (`1,000` = `1000`,
# `3.50` = `3.5`), `format` checks the whole reasoning-then-answer pattern, and `reasoning_checks`
# recomputes every arithmetic claim written in the reasoning. Nothing random ever scores.

# %%
from training.evaluate import evaluate

eval_items = list(generate("eval-v1").items)
if SMOKE:
    eval_items = eval_items[:20]
report = evaluate(RUN_DIR, eval_items, max_new_tokens=128 if SMOKE else None)
summary = report["summary"]
print(f"answer accuracy {summary['answer_accuracy']:.1%} (95 % CI {summary['answer_accuracy_ci'][0]:.1%}–"
      f"{summary['answer_accuracy_ci'][1]:.1%}), format {summary['format_compliance']:.1%} on {summary['count']} items")
for name, row in summary["by_category"].items():
    print(f"  {name:<12} {row['count']:>3} items  {row['answer_accuracy']:.1%}")

# %% [markdown]
# ## 6. Output files
#
# Everything a reviewer needs to check the numbers above: the checkpoint, the per-step metrics, every
# prediction with its judges' verdicts, the evaluation summary and the run manifest.

# %%
import shutil

shutil.copy(RUN_DIR / "metrics.jsonl", OUTPUT_DIR / "metrics.jsonl")
shutil.copy(RUN_DIR / "run_manifest.json", OUTPUT_DIR / "run_manifest.json")
with open(OUTPUT_DIR / "predictions.jsonl", "w", encoding="utf-8") as handle:
    for prediction in report["predictions"]:
        handle.write(json.dumps(prediction) + "\n")
(OUTPUT_DIR / "eval_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
print(sorted(p.name for p in OUTPUT_DIR.iterdir()))

# %% [markdown]
# ## 7. Back to the server (optional)
#
# With a server configured, the run goes back through `POST /api/tunix/runs/import`: its config and the
# dataset version it trained on (id and content hash: the server refuses a run trained on other bytes),
# its metrics, its predictions (which the server judges again with its own judges) and its checkpoint.
#
# What the server makes of it: these outputs are *this notebook's word*, so the evaluation is stored as
# `imported`. It ranks only among imported evaluations (`/api/tunix/evaluations?source=imported`) and never
# counts for a regression gate or a model version. Promoting the run in the registry loads the checkpoint
# (a file that does not load is refused) and queues the server's own evaluation of it; its numbers then
# rank with everything else. The run's lineage reaches back to the traces and who approved them.

# %%
import io
import tarfile
import uuid


def _multipart(fields: dict) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = io.BytesIO()
    for name, (filename, data, content_type) in fields.items():
        body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                   f"Content-Type: {content_type}\r\n\r\n".encode())
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


def _archive(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(folder).as_posix())
    return buffer.getvalue()


if PUSH_RESULTS and DATASET["id"]:
    manifest = json.loads((RUN_DIR / "run_manifest.json").read_text())
    # The server names Gemma weights by the folder they sit in under its own models folder, never by a path.
    pushed_config = {**CONFIG, "model_dir": Path(CONFIG["model_dir"]).name} if CONFIG.get("model_dir") else CONFIG
    run_part = {"dataset_id": DATASET["id"], "dataset_content_hash": DATASET["content_hash"], "config": pushed_config,
                "steps_completed": result.steps_completed, "final_loss": result.final_loss,
                "code_version": manifest.get("code_version"), "device": manifest.get("device"),
                "timings": manifest.get("timings"),
                "tokens_per_s": (manifest.get("throughput") or {}).get("tokens_per_s")}
    predictions = "".join(json.dumps({"id": p["id"], "output": p["output"], "tokens": p["tokens"],
                                      "latency_s": p["latency_s"], "stopped": p["stopped"]}) + "\n"
                          for p in report["predictions"])
    body, content_type = _multipart({
        "run": ("run.json", json.dumps(run_part).encode(), "application/json"),
        "metrics": ("metrics.jsonl", (RUN_DIR / "metrics.jsonl").read_bytes(), "application/x-ndjson"),
        "evaluation": ("evaluation.json", json.dumps({"eval_set": "eval-v1", "limit": len(eval_items)}).encode(),
                       "application/json"),
        "predictions": ("predictions.jsonl", predictions.encode(), "application/x-ndjson"),
        "archive": ("run.tar.gz", _archive(RUN_DIR), "application/gzip"),
    })
    request = urllib.request.Request(SERVER_URL + "/api/tunix/runs/import", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=600) as response:  # noqa: S310 - the configured server
        imported = json.loads(response.read())
    (OUTPUT_DIR / "server_import.json").write_text(json.dumps(imported, indent=2) + "\n")
    evaluation = imported["evaluation"]
    print(f"imported as run {imported['run']['id']}; these outputs judged by the server: answer accuracy "
          f"{evaluation['primary_score']:.1%} on {evaluation['item_count']} items (source: {evaluation['source']})")
    next_steps = imported.get("next") or {}
    print(next_steps.get("note", ""))
    for name in ("leaderboard", "evaluate", "promote"):
        if name in next_steps:
            print(f"  {name:<11} {SERVER_URL}{next_steps[name]}")
else:
    print("no server configured (or the data was generated locally): results stay in", OUTPUT_DIR)
