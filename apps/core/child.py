"""The one follow loop: a job drives a `python -m training` child (a trainer, an evaluator) and follows it.

The child gets its own process group (so a cancel can signal it and anything it started) and the
launcher's pid (`--parent-pid`, so it dies with a killed launcher). Its stdout and stderr are read on two
threads into one queue. `follow()` relays its events (training.protocol) to a `Sink` that writes them in
fenced batches, watches the job context for cancellation and a lost claim, and kills the child in a
`finally` on every way out, so no trainer ever runs on unwatched.

Cancel (`CancelEscalation`): ask nicely (the cancel file the child polls between steps), then SIGTERM,
then SIGKILL, each after the backend's grace (long enough for a step and the final checkpoint).

A database outage does not stop the child: the sink keeps its rows and flushes them when the database
answers again; if it stays away longer than the claim's lease, the job context fences itself off, the
child is killed and the job is left to the reaper, whose retry resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import DatabaseError

from apps.core.errors import Invalid
from apps.core.jobs import JobCancelled, JobContext, JobInterrupted, JobLost, reset_connections_after_error
from training import protocol

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.2
FLUSH_RETRY_SECONDS = 1.0
STDERR_TAIL = 40


def models_folder_env() -> dict[str, str]:
    """A tunix run names its base weights by their folder inside the models folder: a child looks them up in
    this server's (settings.MODELS_DIR), whatever the environment it was started from says."""
    from django.conf import settings

    return {"TUNIXRT_MODELS_DIR": str(settings.MODELS_DIR)}


class ChildProcess:
    def __init__(self, command: list[str], *, cwd: Path, env: dict | None = None):
        self.process = subprocess.Popen(
            command, cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", **models_folder_env(), **(env or {})},
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

    def kill(self) -> None:
        """SIGKILL the child's whole process group, unless it has exited, and reap it."""
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)

    def wait(self) -> int:
        return self.process.wait()


class CancelEscalation:
    """Once started: the cancel file at once, SIGTERM after one grace period, SIGKILL after two."""

    def __init__(self, child: ChildProcess, cancel_file: Path | None, grace_seconds: float,
                 note: Callable[[str], None]):
        self.child, self.cancel_file, self.grace, self.note = child, cancel_file, grace_seconds, note
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
        waited = time.monotonic() - self.started
        if self.stage == "sigterm" and waited >= 2 * self.grace:
            self.stage = "sigkill"
            self.note(f"still running {waited:.0f}s after the cancel request: SIGKILL")
            self.child.signal(signal.SIGKILL)
        elif self.stage == "file" and waited >= self.grace:
            self.stage = "sigterm"
            self.note(f"still running {waited:.0f}s after the cancel request: SIGTERM")
            self.child.signal(signal.SIGTERM)


class Sink:
    """Where a followed child's output goes; subclasses buffer rows and write them in `flush`."""

    def event(self, event: dict) -> None:
        """A protocol event other than `done` and `error` (those go to the Outcome)."""

    def line(self, stream: str, text: str) -> None:
        """A line of stderr, or stdout text that is not an event."""

    def note(self, text: str) -> None:
        """The launcher's own words for the log."""
        self.line("launcher", text)

    def due(self) -> bool:
        return False

    def flush(self) -> None:
        """Write what is buffered, fenced by the claim; may raise DatabaseError (kept and retried) or JobLost."""


@dataclass
class Outcome:
    returncode: int
    done: dict | None = None
    error: dict | None = None
    stderr_tail: list[str] = field(default_factory=list)
    cancel_stage: str | None = None  # file | sigterm | sigkill, when a cancel was requested

    @property
    def completed(self) -> bool:
        return self.returncode == protocol.EXIT_OK and (self.done or {}).get("status") == protocol.COMPLETED

    @property
    def cancelled(self) -> bool:
        return (self.done or {}).get("status") == protocol.CANCELLED or self.cancel_stage is not None

    def raise_unless_completed(self, what: str, *, input_error_code: str) -> None:
        """Map a child that did not complete to the job's end: cancelled, back to the queue, a clear input
        error, or a crash whose message is the child's own error (its traceback stays in the log)."""
        if self.completed:
            return
        if self.cancelled:
            raise JobCancelled(f"{what} was cancelled on request.")
        if self.returncode == protocol.EXIT_INTERRUPTED:
            why = (self.error or {}).get("message") or "stopped by SIGTERM (its host is shutting down)"
            raise JobInterrupted(f"{what} was interrupted: {why}; it resumes in a new attempt")
        if self.returncode == protocol.EXIT_INPUT_ERROR and self.error:
            raise Invalid(self.error.get("errors") or {"input": [self.error.get("message") or "input error"]},
                          code=input_error_code)
        message = (self.error or {}).get("message") or (self.stderr_tail[-1] if self.stderr_tail else "no output")
        raise RuntimeError(f"{what} exited with code {self.returncode}: {message}")


def follow(child: ChildProcess, context: JobContext, sink: Sink, *, cancel_file: Path | None,
           grace_seconds: float) -> Outcome:
    """Relay the child's output to `sink` until it exits, cancelling it when the job is cancelled; the
    child never outlives this call."""
    outcome = Outcome(returncode=-1)
    cancel = CancelEscalation(child, cancel_file, grace_seconds, sink.note)
    context.on_fence(child.kill)  # from the watchdog: even while this thread is stuck in a query
    retry_at = 0.0
    try:
        for line in child.lines():
            if line is not None:
                _take(outcome, sink, *line)
            if sink.due() and time.monotonic() >= retry_at:
                retry_at = 0.0 if _flushed(sink) else time.monotonic() + FLUSH_RETRY_SECONDS
            context.check()  # a lost claim (reaped, or fenced off by the lease) ends here; finally kills
            if context.cancel_requested:
                cancel.start("cancel requested")
            cancel.tick()
        outcome.returncode = child.wait()
        outcome.cancel_stage = cancel.stage
        context.retry_while_owned(sink.flush)
    finally:
        child.kill()
    return outcome


def _take(outcome: Outcome, sink: Sink, name: str, text: str) -> None:
    if name == "stderr":
        outcome.stderr_tail = [*outcome.stderr_tail[-STDERR_TAIL:], text]
        sink.line("stderr", text)
        return
    event = protocol.parse(text)
    if event is None:
        sink.line("stdout", text)
    elif event["event"] == protocol.DONE:
        outcome.done = event
    elif event["event"] == protocol.ERROR:
        outcome.error = event
        sink.note(f"error: {event.get('message', '')}")
    else:
        sink.event(event)


def _flushed(sink: Sink) -> bool:
    """Flush, keeping the rows through a database error (the follow loop tries again shortly)."""
    try:
        sink.flush()
        return True
    except JobLost:
        raise
    except DatabaseError:
        logger.warning("could not write a child's output; keeping it and retrying", exc_info=True)
        reset_connections_after_error()
        return False
