"""The reply-topic janitor: deletes the reply topics of processes that died without cleaning up.

A process deletes its own reply topic when it stops, and a process with a stable name takes over
its predecessor's; a gateway pod killed outright (kill -9, node lost) leaves its topic behind.
Every living process announces its reply topics on loupe.presence (its topic keeper, six times per
grace period); a reply topic that nobody announced for LOUPE_REPLY_TOPIC_GRACE_SECONDS since the
janitor first saw it is deleted. Should the janitor be wrong (a process stalled for the whole grace
period), that process's topic keeper creates the topic again within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from aiokafka.admin import AIOKafkaAdminClient

from loupe_common.kafka import delete_topic
from loupe_common.messages import ReplyTopicsInUse
from loupe_common.settings import Settings
from loupe_common.topics import REPLY_PREFIX

log = logging.getLogger("loupe.hosting.janitor")


class ReplyTopicJanitor:
    def __init__(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self._clock = clock
        self._announced: dict[str, float] = {}  # reply topic -> last announcement
        self._first_listed: dict[str, float] = {}  # reply topic -> when the janitor first saw it
        self._last_heard = float("-inf")  # any announcement: the presence stream is flowing

    def heard(self, announcement: ReplyTopicsInUse) -> None:
        now = self._clock()
        self._last_heard = now
        for topic in announcement.topics:
            self._announced[topic] = now

    def abandoned(self, listed: Iterable[str]) -> list[str]:
        """The reply topics among `listed` whose owners are gone. None while the janitor hears no
        announcements at all (its own process announces too): then it cannot tell the living
        from the dead."""
        now = self._clock()
        replies = {t for t in listed if t.startswith(REPLY_PREFIX)}
        for gone in set(self._first_listed) - replies:
            del self._first_listed[gone]
            self._announced.pop(gone, None)
        if now - self._last_heard > self.grace / 2:
            return []
        found = []
        for topic in sorted(replies):
            seen = max(self._first_listed.setdefault(topic, now), self._announced.get(topic, float("-inf")))
            if now - seen >= self.grace:
                found.append(topic)
        return found

    async def sweep(self, settings: Settings) -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="loupe-janitor")
        await admin.start()
        try:
            listed = await admin.list_topics()
        finally:
            await admin.close()
        deleted = []
        for topic in self.abandoned(listed):
            await delete_topic(settings, topic)
            log.info("deleted reply topic %s: no process announced it for %.0f s", topic, self.grace)
            self._first_listed.pop(topic, None)
            self._announced.pop(topic, None)
            deleted.append(topic)
        return deleted

    async def run(self, settings: Settings) -> None:
        while True:
            await asyncio.sleep(self.grace / 4)
            try:
                await self.sweep(settings)
            except Exception as exc:  # noqa: BLE001 - the broker is down: the next sweep looks again
                log.debug("reply topic sweep failed: %s", exc.__class__.__name__)
