"""Training hooks: how callers watch a run and ask it to stop.

`TrainHooks` is the in-process interface. `JsonEventHooks` is what the CLI uses so a parent
process (the Django runs launcher) can follow a run through one JSON event per stdout line
(training.protocol) and stop it: a cancel file means the user cancelled (status "cancelled"), SIGTERM
means the host is going away (status "interrupted", so the run is resumed rather than recorded as
cancelled). Either way the trainer finishes its current step and checkpoints.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TextIO

from training import protocol


class TrainHooks:
    """No-op base; override what you need. `should_cancel` is polled between steps."""

    def on_step(self, metrics: dict) -> None:
        pass

    def on_log(self, line: str) -> None:
        pass

    def on_checkpoint(self, step: int) -> None:
        """A checkpoint of `step` is complete on disk."""

    def on_samples(self, step: int, samples: list[dict]) -> None:
        """GRPO: completions sampled at `step` with their judges (training.grpo.trainer.sample_rows)."""

    def should_cancel(self) -> bool:
        return False

    def cancel_reason(self) -> str:
        return "cancel_requested"

    def stop_status(self) -> str:
        """The status a run stopped by `should_cancel` ends with."""
        return protocol.CANCELLED


class CollectingHooks(TrainHooks):
    """Keeps every step and log line in memory; cancels after `cancel_after_steps` steps if given."""

    def __init__(self, cancel_after_steps: int | None = None):
        self.steps: list[dict] = []
        self.logs: list[str] = []
        self.cancel_after_steps = cancel_after_steps

    def on_step(self, metrics: dict) -> None:
        self.steps.append(dict(metrics))

    def on_log(self, line: str) -> None:
        self.logs.append(line)

    def should_cancel(self) -> bool:
        return self.cancel_after_steps is not None and len(self.steps) >= self.cancel_after_steps


class StopSignals:
    """A cancel file and SIGTERM, polled between steps (or batches) by any long CLI command."""

    def __init__(self, cancel_file: str | Path | None = None):
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self.sigterm_received = False

    def install_sigterm_handler(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        # Only set a flag: the command finishes the running step (and checkpoints) before exiting.
        self.sigterm_received = True

    def cancelled(self) -> bool:
        return self.cancel_file is not None and self.cancel_file.exists()

    def should_stop(self) -> bool:
        return self.sigterm_received or self.cancelled()

    def reason(self) -> str:
        # The cancel file wins: a launcher escalating a cancel sends SIGTERM after writing it.
        return "cancel_file" if self.cancelled() else "sigterm"

    def status(self) -> str:
        return protocol.CANCELLED if self.cancelled() else protocol.INTERRUPTED


class JsonEventHooks(TrainHooks):
    """Prints training.protocol events; stops on a cancel file ("cancelled") or SIGTERM ("interrupted")."""

    def __init__(self, stream: TextIO | None = None, cancel_file: str | Path | None = None):
        self.stream = stream
        self.signals = StopSignals(cancel_file)

    def install_sigterm_handler(self) -> None:
        self.signals.install_sigterm_handler()

    def emit(self, event: str, **fields) -> None:
        protocol.emit(event, self.stream, **fields)

    def on_step(self, metrics: dict) -> None:
        self.emit(protocol.STEP, **metrics)

    def on_log(self, line: str) -> None:
        self.emit(protocol.LOG, message=line)

    def on_checkpoint(self, step: int) -> None:
        self.emit(protocol.CHECKPOINT, step=step)

    def on_samples(self, step: int, samples: list[dict]) -> None:
        self.emit(protocol.SAMPLES, step=step, samples=samples)

    def should_cancel(self) -> bool:
        return self.signals.should_stop()

    def cancel_reason(self) -> str:
        return self.signals.reason()

    def stop_status(self) -> str:
        return self.signals.status()
