"""Kafka plumbing: the broker every service builds, topic creation, request/reply for the gateway,
and the small ASGI app that runs a message-only service with health routes."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from contextlib import suppress
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, UnknownTopicOrPartitionError
from aiokafka.structs import TopicPartition
from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka import TopicPartition as AssignedPartition
from pydantic import BaseModel

from .errors import ErrorCode, LoupeError
from .messages import Reply, ReplyTopicsInUse
from .metrics import CONSUMER_LAG, exposition
from .settings import Settings
from .topics import CATALOGUE, REPLY_PRESENCE, retention_of

log = logging.getLogger("loupe.kafka")
TOPIC_CHECK_SECONDS = 2.0


def _refuse_topic_auto_creation() -> None:
    """aiokafka 0.14 asks the broker to create every topic it looks up (MetadataRequest v4+ with
    allow_auto_topic_creation=True, with no setting to turn it off), so after a broker restart the
    first producer to send re-created a topic with the broker's default partition count (4 on
    Tansu) instead of the catalogue's. Every lookup of this process asks for no creation; topics
    come from ensure_topics and the topic keeper only."""
    from aiokafka.protocol import metadata

    init = metadata.MetadataRequest.__init__
    if getattr(init, "loupe_patched", False):
        return

    def no_creation(self: Any, topics: list[str] | None = None,
                    allow_auto_topic_creation: bool | None = None) -> None:
        init(self, topics, False if allow_auto_topic_creation is None else allow_auto_topic_creation)

    no_creation.loupe_patched = True  # type: ignore[attr-defined]
    metadata.MetadataRequest.__init__ = no_creation


_refuse_topic_auto_creation()


class ServiceBroker(KafkaBroker):
    async def start(self) -> None:
        """KafkaBroker.start (faststream 0.7.8), except that the subscribers join their consumer
        groups at the same time instead of one after another: every join waits out the broker's
        rebalance delay (3 s on Tansu), so a service with three groups took 9 s to be ready."""
        await self.connect()
        await asyncio.gather(*(sub.start() for sub in self.subscribers))
        for pub in self.publishers:
            await pub.start()
        self.running = True


def make_broker(settings: Settings, *, client_id: str) -> KafkaBroker:
    return ServiceBroker(
        settings.kafka_bootstrap,
        client_id=f"loupe-{client_id}",
        max_request_size=settings.kafka_max_message_bytes,
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
        enable_idempotence=settings.kafka_idempotent_producer,
        linger_ms=0,
        # Topics come from the catalogue (ensure_topics) with their partition counts; a consumer
        # or producer must never create one with the broker's default of a single partition.
        allow_auto_create_topics=False,
        logger=logging.getLogger(f"loupe.{client_id}.broker"),
        log_level=logging.DEBUG,  # FastStream logs every message at this level; keep INFO quiet
    )


PUBLISH_ATTEMPTS = 5


async def publish_with_retry(send: Callable[[], Awaitable[Any]]) -> None:
    """Send, retrying Kafka's retriable errors (a leader moving, metadata going stale) with
    backoff: a transient broker hiccup must not fail a request or a training run."""
    for attempt in range(PUBLISH_ATTEMPTS):
        try:
            await send()
            return
        except KafkaError as exc:
            if not getattr(exc, "retriable", False) or attempt == PUBLISH_ATTEMPTS - 1:
                raise
            log.warning("publish failed (%s); retrying", exc.__class__.__name__)
            await asyncio.sleep(0.05 * 2**attempt)


class GroupJoin(ConsumerRebalanceListener):
    """Records that a group consumer finished joining, even when it was given no partitions
    (more replicas than partitions): such a consumer is idle but ready."""

    def __init__(self) -> None:
        self.joined = False

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.joined = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.joined = True


_GROUP_JOINS: list[GroupJoin] = []
_REPLY_TOPICS: list[str] = []  # this process's reply topics (RequestClient), kept by topic_keeper


def register_group_join() -> GroupJoin:
    """A listener for a consumer built by hand; /ready waits until it has joined its group."""
    join = GroupJoin()
    _GROUP_JOINS.append(join)
    return join


def service_subscriber_options(
    settings: Settings, group_id: str, *, background: bool = False, **extra: Any
) -> dict[str, Any]:
    """Options for a service's work subscriber: a consumer group, start from the beginning of the
    topic for a new group, and commit only after the handler finished (a crash replays).
    `background`: off the request path, so idle fetches may wait longer."""
    join = register_group_join()
    return {
        "group_id": group_id,
        "listener": join,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.ACK,
        "fetch_max_wait_ms": (settings.kafka_idle_fetch_max_wait_ms if background
                              else settings.kafka_fetch_max_wait_ms),
        # Kafka's minimum; a shorter session also makes group joins finish sooner (Tansu
        # completes a join after half the session timeout).
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        # A static member does not leave its group when it stops; its successor of the same name
        # takes over. Only for processes with a stable name (settings.member_name).
        "group_instance_id": f"{settings.member_name}.{group_id}" if settings.member_name else None,
        **extra,
    }


RECORD_FRAMING_BYTES = 65536  # room for a batch's framing and headers (the consumers add the same)


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """The configs a topic is created with: its retention (topics.retention_of: the catalogue, or
    the prefix of a reply or model request topic), and a record size limit that lets through the
    largest record Loupe produces (Kafka's default, about 1 MB, is below it)."""
    configs = {"max.message.bytes": str(settings.kafka_max_message_bytes + RECORD_FRAMING_BYTES)}
    retention = retention_of(name)
    if retention is not None:
        configs.update(retention.configs())
    return configs


async def ensure_topics(
    settings: Settings,
    topics: Iterable[tuple[str, int]] | None = None,
    *,
    extra: Iterable[tuple[str, int]] = (),
) -> list[str]:
    """Create missing topics (default: the whole catalogue, plus `extra`, e.g. a process's reply
    topic) over one admin connection, with their configs (topic_configs); returns the names it
    created. A topic that exists keeps the configs it has: Tansu has no AlterConfigs, and on
    Kafka an operator may have changed them."""
    wanted = list(topics) if topics is not None else [
        (spec.name, settings.topic_partitions if spec.partitioned else 1) for spec in CATALOGUE
    ]
    wanted += list(extra)
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="loupe-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(name, num_partitions=parts, replication_factor=settings.topic_replication,
                     topic_configs=topic_configs(settings, name))
            for name, parts in wanted
            if name not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another process won the race
        return [t.name for t in new]
    finally:
        await admin.close()


_KEPT: list[Callable[[], Awaitable[list[tuple[str, int]]]]] = []


def keep_topics(source: Callable[[], Awaitable[list[tuple[str, int]]]]) -> None:
    """Add topics the keeper of this process must keep (e.g. hosting: the hosted models' topics)."""
    _KEPT.append(source)


_WATCHED: weakref.WeakSet[AIOKafkaConsumer] = weakref.WeakSet()
_WATCHED_BROKERS: list[KafkaBroker] = []


def watch_consumer(consumer: AIOKafkaConsumer) -> None:
    """A consumer built by hand (inference units, ingest) that topic_keeper rewinds if needed."""
    _WATCHED.add(consumer)


def _consumers() -> list[AIOKafkaConsumer]:
    found = list(_WATCHED)
    for broker in _WATCHED_BROKERS:
        found += [c for sub in broker.subscribers if (c := getattr(sub, "consumer", None)) is not None]
    return found


REWIND_QUIET_SECONDS = 300.0  # one rewind per partition and consumer in this time, at most
_SUSPECT: dict[tuple[int, TopicPartition], int] = {}  # (consumer, partition) -> position seen past the end
_REWOUND_AT: dict[tuple[int, TopicPartition], float] = {}


async def rewind_if_ahead(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Records this consumer's lag (loupe_kafka_consumer_lag), and sends partitions where its
    position is past the log's end back to their beginning. That happens only when the log started
    again: the local broker restarted (its storage is memory) and the topic was created anew.
    Tansu then answers such fetches with nothing rather than OFFSET_OUT_OF_RANGE, so the consumer
    would wait for offsets that may never come.

    A rewind replays the partition, so it needs two checks in a row that see the same position past
    the end (a consumer that still moves is reading records: the log is there and the end it was
    told is stale), and it happens at most once per REWIND_QUIET_SECONDS. Once, under load, the
    local broker kept answering an end below records the dataset service had read: without these
    guards its commands were replayed from 0 every 2 s for nine minutes."""
    assigned = list(consumer.assignment())
    if not assigned:
        return []
    # Positions first, then the ends: read the other way round, records consumed in between would
    # put a live consumer past an end that was already stale, and it would replay its whole topic.
    positions = {tp: await asyncio.wait_for(consumer.position(tp), 5.0) for tp in assigned}
    ends = await consumer.end_offsets(assigned)
    rewound = []
    lag: dict[str, int] = {}
    now = time.monotonic()
    for tp, position in positions.items():
        end = ends.get(tp, position)
        key = (id(consumer), tp)
        if position <= end:
            _SUSPECT.pop(key, None)
        elif _SUSPECT.get(key) != position:
            _SUSPECT[key] = position  # first sight, or it moved: look again at the next check
        elif now - _REWOUND_AT.get(key, float("-inf")) < REWIND_QUIET_SECONDS:
            log.error("%s:%s is at %d, past the end the broker reports (%d), again within %.0f s of a "
                      "rewind: not rewinding", tp.topic, tp.partition, position, end, REWIND_QUIET_SECONDS)
            _SUSPECT.pop(key, None)
        else:
            consumer.seek(tp, 0)
            rewound.append(tp)
            _REWOUND_AT[key] = now
            _SUSPECT.pop(key, None)
        lag[tp.topic] = lag.get(tp.topic, 0) + max(end - position, 0)
    group = getattr(consumer, "_group_id", None) or "none"
    for topic, behind in lag.items():
        CONSUMER_LAG.labels(group, topic).set(behind)
    return rewound


async def topic_keeper(settings: Settings, broker: KafkaBroker | None = None, *,
                       catalogue: bool = False) -> None:
    """A background loop of every process: this process's reply topics and what keep_topics added
    (and with `catalogue`, the topic catalogue) exist with their partition counts, no consumer
    waits past a log's end, and the reply topics are announced to the janitor. The local broker
    keeps topics in memory: after it restarts, Loupe itself creates them again (within
    TOPIC_CHECK_SECONDS) and its consumers start again from the new logs' beginnings. Each topic has
    one keeper (the catalogue's is the hosting service, and `make run`'s supervisor when it restarts
    the broker): Tansu 0.6 corrupts a partition (every later produce fails with UnknownError) when
    several clients create the same topic at once."""
    if broker is not None:
        _WATCHED_BROKERS.append(broker)
    announced = float("-inf")
    while True:
        try:
            extra = [(topic, 1) for topic in _REPLY_TOPICS]
            for source in _KEPT:
                extra += await source()
            created = await ensure_topics(settings, None if catalogue else [], extra=extra)
            if created:
                log.warning("topics were missing (did the broker restart?); created %s",
                            ", ".join(sorted(created)))
        except Exception as exc:  # noqa: BLE001 - the broker is down: try again at the next round
            log.debug("topic check failed: %s", exc.__class__.__name__)
        due = time.monotonic() - announced >= settings.reply_topic_grace_seconds / 6
        if broker is not None and _REPLY_TOPICS and due:
            announced = time.monotonic()
            await announce_reply_topics(settings, broker)
        for consumer in _consumers():
            try:
                for tp in await rewind_if_ahead(consumer):
                    log.warning("%s:%s starts again at 0 (the broker lost its log)", tp.topic, tp.partition)
            except Exception as exc:  # noqa: BLE001 - e.g. mid-rebalance: the next round looks again
                log.debug("position check failed: %s", exc.__class__.__name__)
        await asyncio.sleep(TOPIC_CHECK_SECONDS)


async def announce_reply_topics(settings: Settings, broker: KafkaBroker) -> None:
    """Tell the reply-topic janitor (hosting) that this process still reads its reply topics."""
    try:
        await asyncio.wait_for(broker.publish(
            ReplyTopicsInUse(process=settings.process_name, topics=list(_REPLY_TOPICS)), REPLY_PRESENCE), 5.0)
    except Exception as exc:  # noqa: BLE001 - the broker is down: the next round announces again
        log.debug("announcing reply topics failed: %s", exc.__class__.__name__)


async def delete_topic(settings: Settings, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="loupe-admin")
    await admin.start()
    try:
        await admin.delete_topics([name])
    except UnknownTopicOrPartitionError:
        pass
    finally:
        await admin.close()


class RequestClient:
    """Sends a command and awaits its reply on this process's own reply topic.

    The service answers through FastStream's reply_to support; replies are matched by correlation
    id. A reply that arrives after its request timed out is dropped.
    """

    def __init__(self, broker: KafkaBroker, settings: Settings, reply_topic: str,
                 fetch_max_wait_ms: int | None = None) -> None:
        self._broker = broker
        self._settings = settings
        self._reply_topic = reply_topic
        self._timeout = settings.request_timeout_seconds
        _REPLY_TOPICS.append(reply_topic)
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        # Assigned by hand, not subscribed: a consumer without a group that subscribes is
        # reassigned whenever a metadata answer misses its topic, and a reassigned partition
        # starts again at auto_offset_reset, here the beginning, so every reply since the process
        # started would be read again before the new ones (seconds, growing with uptime).
        broker.subscriber(
            partitions=[AssignedPartition(reply_topic, 0, declare=False)], auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms or settings.kafka_fetch_max_wait_ms,
        )(self._on_reply)

    async def _on_reply(self, body: dict[str, Any], msg: KafkaMessage) -> None:
        future = self._pending.pop(msg.correlation_id, None)
        if future is not None and not future.done():
            future.set_result(Reply.model_validate(body))

    async def readiness(self) -> str | None:
        return await readiness(self._broker)

    async def open(self) -> None:
        """Create the reply topic, empty: a process with a stable name (member_name) takes over
        the topic of its dead predecessor, whose unread replies are of no use to anyone."""
        if self._settings.member_name:
            await delete_topic(self._settings, self._reply_topic)
        await ensure_topics(self._settings, extra=[(self._reply_topic, 1)])

    async def close(self) -> None:
        _REPLY_TOPICS.remove(self._reply_topic)
        await delete_topic(self._settings, self._reply_topic)

    async def request(
        self, topic: str, command: BaseModel | bytes, *, key: str | None, timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send `command` (a typed command, or raw bytes with `headers`) and await its Reply."""
        correlation_id = str(uuid.uuid4())
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        try:
            try:
                # Sending never takes longer than the request timeout: with the broker down, the
                # producer would otherwise wait for metadata as long as aiokafka lets it.
                await asyncio.wait_for(publish_with_retry(lambda: self._broker.publish(
                    command,
                    topic,
                    key=key.encode() if key is not None else None,
                    reply_to=self._reply_topic,
                    correlation_id=correlation_id,
                    headers=headers,
                )), min(timeout or self._timeout, self._timeout))
            except TimeoutError:
                log.warning("could not publish to %s within %.1fs: the broker is unreachable", topic,
                            self._timeout)
                raise LoupeError(ErrorCode.INTERNAL, "The message broker is unreachable; nothing was done. "
                                 "Retry later.") from None
            return await asyncio.wait_for(future, timeout or self._timeout)
        except KafkaError as exc:  # e.g. a record over the broker's size limit: fail this request only
            log.warning("publishing to %s failed: %s", topic, exc)
            raise LoupeError(ErrorCode.INTERNAL, f"The message broker refused the request "
                             f"({exc.__class__.__name__})") from None
        except TimeoutError:
            log.warning("no reply on %s within %.1fs for %s", topic, timeout or self._timeout, correlation_id)
            raise LoupeError(
                ErrorCode.INTERNAL,
                "The service did not answer in time; the request may still complete. "
                "Retry with the same client token.",
            ) from None
        finally:
            self._pending.pop(correlation_id, None)


async def readiness(broker: KafkaBroker) -> str | None:
    """None when ready: the broker answers and every group consumer of this process has joined
    its group, so a command published now is handled now (not after the next group join).
    Otherwise what is missing, in words."""
    if not await broker.ping(timeout=3.0):
        return "not ready: broker"
    if not all(join.joined for join in _GROUP_JOINS):
        return "not ready: joining consumer groups"
    return None



async def cancel_all(tasks: list[asyncio.Task]) -> None:
    """Stop a service's background loops (control loops, sweepers, heartbeats) at shutdown."""
    for task in tasks:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def _json(status: int, text: str) -> AsgiResponse:
    return AsgiResponse(f'{{"status":"{text}"}}'.encode(), status,
                        headers={"content-type": "application/json"})


@get
async def _alive(scope: Any) -> AsgiResponse:  # noqa: ARG001
    return _json(200, "ok")


def service_app(broker: KafkaBroker, settings: Settings, *,
                background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
                keep_catalogue: bool = False,
                **kwargs: Any) -> AsgiFastStream:
    """A message-only service as an ASGI app: /health (alive), /ready (consuming, or what is
    missing) and /metrics. `background`: the service's own loops (control loops, sweepers,
    heartbeats), started once the broker is connected, beside the topic keeper (which keeps the
    catalogue too with `keep_catalogue`), and cancelled first at shutdown."""

    @get
    async def ready(scope: Any) -> AsgiResponse:  # noqa: ARG001
        missing = await readiness(broker)
        return _json(200, "ok") if missing is None else _json(503, missing)

    @get
    async def metrics(scope: Any) -> AsgiResponse:  # noqa: ARG001
        body, content_type = exposition()
        return AsgiResponse(body, 200, headers={"content-type": content_type})

    app = AsgiFastStream(broker, asgi_routes=[("/health", _alive), ("/ready", ready), ("/metrics", metrics)],
                         **kwargs)
    tasks: list[asyncio.Task] = []

    @app.after_startup
    async def start_background() -> None:
        tasks.append(asyncio.create_task(topic_keeper(settings, broker, catalogue=keep_catalogue)))
        tasks.extend(asyncio.create_task(run()) for run in background)

    @app.on_shutdown
    async def stop_background() -> None:
        await cancel_all(tasks)
    return app
