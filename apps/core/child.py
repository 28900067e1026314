"""A child process a launcher follows line by line: the trainer of a run, the generator of an evaluation.

The child gets its own process group (so a cancel can signal it and anything it started) and the
launcher's pid (`--parent-pid`, so it dies with a killed launcher). Its stdout and stderr are read
on two threads into one queue; `lines()` yields them as they come, with `None` ticks in between so
the caller can flush batches and check for cancellation without blocking on a quiet child.

`CancelEscalation` is the cancel protocol both launchers use: ask nicely (a cancel file the child
polls between steps), then SIGTERM, then SIGKILL, each after `RUN_CANCEL_GRACE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

TICK_SECONDS = 0.2


class ChildProcess:
    def __init__(self, command: list[str], *, cwd: Path, env: dict | None = None):
        self.process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, bufsize=1)
        self.pid = self.process.pid
        self._queue: queue.Queue = queue.Queue()
        for stream, name in ((self.process.stdout, "stdout"), (self.process.stderr, "stderr")):
            threading.Thread(target=self._read, args=(stream, name), daemon=True).start()

    def _read(self, stream, name: str) -> None:
        for raw in stream:
            self._queue.put((name, raw.rstrip("\n")))
        self._queue.put((name, None))

    def lines(self) -> Iterator[tuple[str, str] | None]:
        """(stream, line) pairs until both streams close; None every TICK_SECONDS of quiet."""
        open_streams = 2
        while open_streams:
            try:
                name, text = self._queue.get(timeout=TICK_SECONDS)
            except queue.Empty:
                yield None
                continue
            if text is None:
                open_streams -= 1
            else:
                yield name, text

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def wait(self) -> int:
        return self.process.wait()


class CancelEscalation:
    """Once started: the cancel file at once, SIGTERM after one grace period, SIGKILL after two."""

    def __init__(self, child: ChildProcess, cancel_file: Path | None, note: Callable[[str], None]):
        self.child, self.cancel_file, self.note = child, cancel_file, note
        self.started: float | None = None
        self.stage: str | None = None  # file | sigterm | sigkill

    def start(self, why: str) -> None:
        if self.started is not None:
            return
        self.started, self.stage = time.monotonic(), "file"
        if self.cancel_file is not None:
            self.cancel_file.touch()
        self.note(f"{why}: asked the child process to stop after its current step")

    def tick(self) -> None:
        if self.started is None:
            return
        waited, grace = time.monotonic() - self.started, settings.RUN_CANCEL_GRACE_SECONDS
        if self.stage == "sigterm" and waited >= 2 * grace:
            self.stage = "sigkill"
            self.note(f"still running {waited:.0f}s after the cancel request: SIGKILL")
            self.child.signal(signal.SIGKILL)
        elif self.stage == "file" and waited >= grace:
            self.stage = "sigterm"
            self.note(f"still running {waited:.0f}s after the cancel request: SIGTERM")
            self.child.signal(signal.SIGTERM)
