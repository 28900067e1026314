"""Change notifications for live followers (the run log stream), over Redis pub/sub.

A writer calls `notify(topic)` after committing something followers show (new log lines, a status
change). A follower, in an async view, waits on a `Follower` between database reads: the wait ends
as soon as the topic is notified, so an idle follower costs one pending asyncio wait, not a thread
or a query loop.

One pattern subscription per process and event loop fans notifications out to every follower.
Without Redis (the embedded default) a wait simply sleeps `NOTIFY_POLL_SECONDS`, and followers poll
the database at that pace instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "tunixrt:notify:"
_publisher: redis.Redis | None = None


def _url() -> str:
    return settings.NOTIFY_REDIS_URL


def notify(topic: str) -> None:
    """Tell followers of `topic` to look again; a failure only costs them their poll interval."""
    global _publisher
    if not _url():
        return
    try:
        if _publisher is None:
            _publisher = redis.Redis.from_url(_url(), socket_timeout=2, socket_connect_timeout=2)
        _publisher.publish(CHANNEL_PREFIX + topic, b"1")
    except redis.RedisError:
        logger.warning("notify(%s) failed; followers fall back to polling", topic, exc_info=True)


class _Hub:
    """The pattern subscription of one event loop and the waiters it wakes."""

    def __init__(self):
        self.waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.task: asyncio.Task | None = None

    async def listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(_url())
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(CHANNEL_PREFIX + "*")
            async for message in pubsub.listen():
                topic = message["channel"].decode()[len(CHANNEL_PREFIX):]
                for event in self.waiters.get(topic, ()):
                    event.set()
        except (redis.RedisError, OSError):
            logger.warning("notification listener stopped; followers poll instead", exc_info=True)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def ensure_listening(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.listen())


_hubs: dict[int, _Hub] = {}


class Follower:
    """Follows one topic. Registered before the first read, so a notification that lands between a
    read and the next wait is not lost:

        async with Follower(topic) as follower:
            while True:
                ...read and send what is new...
                await follower.wait(timeout)
    """

    def __init__(self, topic: str):
        self.topic = topic
        self.event = asyncio.Event()
        self.hub: _Hub | None = None

    async def __aenter__(self):
        if _url():
            self.hub = _hubs.setdefault(id(asyncio.get_running_loop()), _Hub())
            self.hub.ensure_listening()
            self.hub.waiters[self.topic].add(self.event)
        return self

    async def __aexit__(self, *exc):
        if self.hub is not None:
            self.hub.waiters[self.topic].discard(self.event)
            if not self.hub.waiters[self.topic]:
                self.hub.waiters.pop(self.topic, None)
            if not self.hub.waiters:
                await self.hub.stop()  # nothing pending when the last follower leaves (or the loop ends)

    async def wait(self, timeout: float) -> bool:
        """True when the topic was notified (since the last wait) within `timeout` seconds."""
        if self.hub is None:
            await asyncio.sleep(min(timeout, settings.NOTIFY_POLL_SECONDS))
            return False
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self.event.clear()
