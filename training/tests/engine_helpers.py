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


class CliRun:
    """`python -m training train ...` in a subprocess, read event by event from its stdout."""

    def __init__(self, config_path: Path, data_path: Path, out_dir: Path, *extra: str):
        import subprocess
        import sys

        self.process = subprocess.Popen(
            [sys.executable, "-m", "training", "train", "--config", str(config_path),
             "--data", str(data_path), "--out", str(out_dir), "--peak-flops", "1e11", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
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
