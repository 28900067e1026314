"""The web process's side of the model host (training.serve): one child per process, started on the first
request, restarted after it dies; requests from many threads share it and are matched to replies by id.

The child's stdin is its lifeline: when this process exits the pipe closes and the host exits too, so
no host outlives the web worker that started it (PR_SET_PDEATHSIG would fire when the starting *thread*
ends, which for a request thread is at once).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field

from django.conf import settings

from apps.core.errors import Unavailable
from training.base_weights import MODELS_DIR_ENV

logger = logging.getLogger(__name__)

STDERR_TAIL = 40


@dataclass
class _Waiter:
    event: threading.Event = field(default_factory=threading.Event)
    reply: dict | None = None


class ModelHost:
    def __init__(self):
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._pending: dict[str, tuple[subprocess.Popen, _Waiter]] = {}
        self.stderr_tail: deque = deque(maxlen=STDERR_TAIL)
        self.starts = 0

    def call(self, request: dict, *, timeout: float | None = None) -> dict:
        """The host's reply to `request`; Unavailable when it dies or does not answer in time."""
        request_id, waiter = uuid.uuid4().hex, _Waiter()
        line = json.dumps({**request, "id": request_id}) + "\n"
        with self._lock:
            process = self._running()
            self._pending[request_id] = (process, waiter)
            try:
                process.stdin.write(line)
                process.stdin.flush()
            except OSError:
                self._pending.pop(request_id, None)
                raise Unavailable("The model host is not accepting requests; retry.", code="model_host_down") from None
        if not waiter.event.wait(timeout or settings.SERVING_TIMEOUT_S):
            with self._lock:
                self._pending.pop(request_id, None)
            raise Unavailable(f"The model did not answer within {timeout or settings.SERVING_TIMEOUT_S} s.",
                              code="model_timeout")
        return waiter.reply

    def stats(self) -> dict:
        return self.call({"op": "stats"})["stats"]

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.stdin.close()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    # --- the child ------------------------------------------------------------------------------

    def _running(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            self._process = self._start()
        return self._process

    def _start(self) -> subprocess.Popen:
        command = [sys.executable, "-m", "training", "serve",
                   "--memory-budget-mb", str(settings.SERVING_MEMORY_BUDGET_MB)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", MODELS_DIR_ENV: str(settings.MODELS_DIR)}
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.starts += 1
        threading.Thread(target=self._read_replies, args=(process,), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(process,), daemon=True).start()
        logger.info("model host started (pid %s)", process.pid)
        return process

    def _read_replies(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            try:
                reply = json.loads(line)
            except ValueError:
                continue  # a library printing to stdout; replies are whole JSON lines
            with self._lock:
                entry = self._pending.pop(reply.get("id"), None) if isinstance(reply, dict) else None
            if entry is not None:
                waiter = entry[1]
                waiter.reply = reply
                waiter.event.set()
        self._host_exited(process)

    def _host_exited(self, process: subprocess.Popen) -> None:
        """Every request still waiting on this child learns it died (a new one serves the next request)."""
        code = process.wait()
        with self._lock:
            if self._process is process:
                self._process = None
            waiting = {key: waiter for key, (owner, waiter) in self._pending.items() if owner is process}
            for key in waiting:
                del self._pending[key]
        if waiting:
            logger.error("model host exited (code %s) with %d requests waiting: %s", code, len(waiting),
                         " | ".join(self.stderr_tail)[-2000:])
        for waiter in waiting.values():
            waiter.reply = {"ok": False, "error": "model_host_exited",
                            "message": f"The model host stopped (exit code {code}) before it answered; retry."}
            waiter.event.set()

    def _read_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            self.stderr_tail.append(line.rstrip("\n"))


_HOST = ModelHost()


def model_host() -> ModelHost:
    return _HOST
