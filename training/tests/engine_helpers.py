"""Shared builders for the training-engine tests: small traces, export files and configs."""

from __future__ import annotations

import json
import random
from pathlib import Path

from training.config import TrainConfig
from training.render import render_tunix_sft
from training.run_files import read_metrics


def arithmetic_trace(a: int, b: int) -> dict:
    return {
        "trace_version": "1.0",
        "prompt": f"What is {a} + {b}?",
        "final_answer": str(a + b),
        "steps": [{"i": 0, "type": "compute", "content": f"{a} + {b} = {a + b}"}],
        "meta": {"category": "addition"},
    }


def arithmetic_traces(count: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [arithmetic_trace(rng.randint(1, 60), rng.randint(1, 60)) for _ in range(count)]


def write_sft_file(path: Path, traces: list[dict]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for index, trace in enumerate(traces):
            handle.write(json.dumps(render_tunix_sft(trace, f"trace-{index}")) + "\n")
    return path


def tiny_config(**overrides) -> TrainConfig:
    values = {
        "model": "tiny",
        "max_steps": 40,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "warmup_steps": 5,
        "max_seq_len": 96,
        "checkpoint_every": 10,
        **overrides,
    }
    return TrainConfig.from_dict(values)


def write_config_yaml(path: Path, config: TrainConfig) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")
    return path


def train_addition_start(root: Path) -> Path:
    """The GRPO tests' starting point, `root/sft`: 60 SFT steps on the 25 single-digit additions, after which
    the tiny model writes the target format in about a quarter of its samples at temperature 1."""
    from training.engine import train

    traces = [arithmetic_trace(a, b) for a in range(5) for b in range(5)] * 4
    random.Random(0).shuffle(traces)
    data = write_sft_file(root / "data.jsonl", traces)
    config = tiny_config(max_steps=60, checkpoint_every=0, max_seq_len=96, learning_rate=1e-2, warmup_steps=5)
    train(config, data, root / "sft", peak_flops=1e11)
    return root / "sft"


class CliProcess:
    """A `python -m training <args>` subprocess, read event by event from its stdout."""

    def __init__(self, *args: str, cwd: Path | None = None, stderr=None):
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-m", "training", *args], cwd=cwd, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if stderr is None else stderr, text=True,
        )
        self.events: list[dict] = []

    def next_event(self) -> dict | None:
        line = self.process.stdout.readline()
        if not line:
            return None
        event = json.loads(line)
        self.events.append(event)
        return event

    def wait_for(self, predicate) -> dict:
        while (event := self.next_event()) is not None:
            if predicate(event):
                return event
        raise AssertionError(f"the run ended without the awaited event; last events: {self.events[-3:]}")

    def finish(self, timeout: float = 120) -> int:
        while self.next_event() is not None:
            pass
        return self.process.wait(timeout=timeout)


class CliRun(CliProcess):
    """`python -m training train ...` in a subprocess."""

    def __init__(self, config_path: Path, data_path: Path, out_dir: Path, *extra: str):
        super().__init__("train", "--config", str(config_path), "--data", str(data_path), "--out", str(out_dir),
                         "--peak-flops", "1e11", *extra)


def run_losses(run_dir: Path) -> dict[int, float]:
    return {line["step"]: line["loss"] for line in read_metrics(run_dir / "metrics.jsonl")}


def kill_after_checkpoint(config_path: Path, data_path: Path, out_dir: Path, checkpoint_every: int) -> None:
    """Start the CLI run and SIGKILL it a few steps after its first checkpoint."""
    import signal

    killed = CliRun(config_path, data_path, out_dir)
    killed.wait_for(lambda e: e.get("message") == f"checkpoint saved at step {checkpoint_every}")
    killed.wait_for(lambda e: e.get("event") == "step" and e["step"] >= checkpoint_every + 3)
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(timeout=60)
