"""The run log as Server-Sent Events: `log`, `metric`, `status` and `heartbeat` events.

Every event carries `id: <log seq>.<metric step>`, so a client that reconnects with `Last-Event-ID`
(or `since_seq` / `since_step`) resumes exactly after what it has: every line arrives once. The
stream closes after the run reaches a final state and everything before it was sent.

Under ASGI the stream is an async iterator that waits on a pub/sub notification between reads, so
an idle follower holds no worker and no database connection and runs no queries (only its request's
parked thread and a socket). Under WSGI (a sync worker) the same reads run in a loop that sleeps
between polls and occupies its worker, which is why the production shape serves this path from the
ASGI server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from django.utils import timezone

from apps.core.lookups import as_int
from apps.core.models import FINAL_JOB_STATUSES
from apps.core.notify import Follower
from apps.runs import selectors
from apps.runs.services import run_topic

HEARTBEAT_SECONDS = 15.0
WSGI_POLL_SECONDS = 1.0
MAX_STREAM_SECONDS = 3600.0  # clients reconnect with Last-Event-ID; long streams are recycled


def parse_last_event_id(value: str | None) -> tuple[int, int] | None:
    """`<seq>.<step>` → (seq, step); None when absent or malformed."""
    if not value:
        return None
    seq, _, step = value.partition(".")
    seq, step = as_int(seq), as_int(step or "0")
    if seq is None or step is None:
        return None
    return seq, step


class LogStream:
    """The reads and the event encoding, shared by the sync and async drivers."""

    def __init__(self, run_id, since_seq: int, since_step: int, batch: int = 500):
        self.run_id, self.seq, self.step, self.batch = run_id, since_seq, since_step, batch
        self.status: dict | None = None
        self.final_seen = False
        self.done = False

    def read(self) -> tuple[list[str], bool]:
        """New events since the last read, and whether more are waiting (a full batch)."""
        # Once the final status was seen, read afresh: the next read decides whether the stream is done.
        lines, metrics, status = _shared_read(self.run_id, self.seq, self.step, self.batch,
                                              fresh=self.final_seen)
        events = []
        for line in lines:
            self.seq = line["seq"]
            events.append(self._event("log", line))
        for metric in metrics:
            self.step = metric["step"]
            events.append(self._event("metric", metric))
        comparable = {key: value for key, value in status.items() if key != "heartbeat_at"}
        if comparable != self.status:
            self.status = comparable
            events.append(self._event("status", status))
        more = len(lines) == self.batch or len(metrics) == self.batch
        # Done only after a read that began once the final status was already visible found nothing new.
        if self.final_seen and not lines and not metrics:
            self.done = True
        self.final_seen = status.get("status") in FINAL_JOB_STATUSES
        return events, more

    def read_and_close(self) -> tuple[list[str], bool]:
        """`read`, then close this thread's database connection: an idle follower must hold none
        (a hundred followers would otherwise pin a hundred PostgreSQL connections)."""
        try:
            return self.read()
        finally:
            connections.close_all()

    def heartbeat(self) -> str:
        return self._event("heartbeat", {"at": timezone.now(), "run_heartbeat_at": (self.status or {}).get(
            "heartbeat_at")})

    def _event(self, kind: str, data: dict) -> str:
        payload = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"))
        return f"id: {self.seq}.{self.step}\nevent: {kind}\ndata: {payload}\n\n"


# Followers of one run all sit at the same position, and a notification wakes them together: the
# first one reads, the others wait for it and reuse its result (single flight) for SHARE_SECONDS.
SHARE_SECONDS = 0.5
_shared: dict[tuple, tuple[float, tuple]] = {}
_locks: dict[tuple, threading.Lock] = {}
_locks_guard = threading.Lock()


def _shared_read(run_id, seq: int, step: int, batch: int, *, fresh: bool) -> tuple[list, list, dict]:
    key = (str(run_id), seq, step, batch)
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        now = time.monotonic()
        hit = _shared.get(key)
        if hit is not None and not fresh and now - hit[0] < SHARE_SECONDS:
            return hit[1]
        value = (selectors.log_lines_after(run_id, seq, batch), selectors.metrics_after(run_id, step, batch),
                 selectors.run_status(run_id) or {})
        _shared[key] = (now, value)
    with _locks_guard:
        for old in [k for k, (at, _) in _shared.items() if now - at > 10 * SHARE_SECONDS]:
            _shared.pop(old, None)
            _locks.pop(old, None)
    return value


async def async_events(stream: LogStream) -> AsyncIterator[str]:
    started = time.monotonic()
    yield "retry: 2000\n\n"
    async with Follower(run_topic(stream.run_id)) as follower:
        while not stream.done and time.monotonic() - started < MAX_STREAM_SECONDS:
            events, more = await sync_to_async(stream.read_and_close, thread_sensitive=False)()
            for event in events:
                yield event
            if more or stream.done:
                continue
            if stream.final_seen:
                continue  # one more read to collect what was written just before the final status
            if not await follower.wait(HEARTBEAT_SECONDS):
                yield stream.heartbeat()


def sync_events(stream: LogStream) -> Iterator[str]:
    started, last_beat = time.monotonic(), time.monotonic()
    yield "retry: 2000\n\n"
    while not stream.done and time.monotonic() - started < MAX_STREAM_SECONDS:
        events, more = stream.read()
        yield from events
        if more or stream.done or stream.final_seen:
            continue
        time.sleep(WSGI_POLL_SECONDS)
        if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
            last_beat = time.monotonic()
            yield stream.heartbeat()
