"""Training hooks: how callers watch a run and ask it to stop.

`TrainHooks` is the in-process interface. `JsonEventHooks` is what the CLI uses so a parent
process (the Django runs launcher) can follow a run through one JSON event per stdout line and
cancel it with a file or SIGTERM; either way the trainer finishes its current step, checkpoints,
and returns status "cancelled".
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import TextIO


class TrainHooks:
    """No-op base; override what you need. `should_cancel` is polled between steps."""

    def on_step(self, metrics: dict) -> None:
        pass

    def on_log(self, line: str) -> None:
        pass

    def should_cancel(self) -> bool:
        return False

    def cancel_reason(self) -> str:
        return "cancel_requested"


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


class JsonEventHooks(TrainHooks):
    """Prints `{"event": "step"|"log"|"done", ...}` lines; cancels on a cancel file or SIGTERM."""

    def __init__(self, stream: TextIO | None = None, cancel_file: str | Path | None = None):
        self.stream = stream or sys.stdout
        self.cancel_file = Path(cancel_file) if cancel_file else None
        self.sigterm_received = False

    def install_sigterm_handler(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum, frame) -> None:
        # Only set a flag: the trainer finishes the running step and checkpoints before exiting.
        self.sigterm_received = True

    def emit(self, event: str, **fields) -> None:
        self.stream.write(json.dumps({"event": event, **fields}, sort_keys=True) + "\n")
        self.stream.flush()

    def on_step(self, metrics: dict) -> None:
        self.emit("step", **metrics)

    def on_log(self, line: str) -> None:
        self.emit("log", message=line)

    def should_cancel(self) -> bool:
        return self.sigterm_received or (self.cancel_file is not None and self.cancel_file.exists())

    def cancel_reason(self) -> str:
        return "sigterm" if self.sigterm_received else "cancel_file"
