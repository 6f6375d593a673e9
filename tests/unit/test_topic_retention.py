"""Every topic Loupe creates gets explicit retention configs from the catalogue (topics.Retention):
the catalogue's topics by name, reply and model request topics by prefix; the configs are ones
Kafka accepts (Tansu accepts anything, so this is the only check of them short of a real Kafka)."""

from __future__ import annotations

import pytest

from loupe_common import kafka
from loupe_common.settings import Settings
from loupe_common.topics import (
    CATALOGUE,
    DURABLE,
    HOSTING_ASSIGNMENTS,
    INGEST,
    REPLIES,
    REPLY_PRESENCE,
    REQUESTS,
    STREAM,
    TABLES,
    TAGGING_REQUESTS,
    WORKER_HEARTBEATS,
    Retention,
    model_request_topic,
    reply_topic,
    retention_of,
)

KAFKA_INT_CONFIGS = {"retention.ms", "retention.bytes", "segment.ms", "segment.bytes", "max.message.bytes"}
KAFKA_MIN_SEGMENT_BYTES = 1024 * 1024  # Kafka 4.0's lower bound for segment.bytes (it was 14 bytes before)


def settings() -> Settings:
    return Settings(_env_file=None)


def test_every_catalogue_topic_states_its_retention():
    for spec in CATALOGUE:
        assert isinstance(spec.retention, Retention), spec.name
        assert retention_of(spec.name) is spec.retention


def test_topics_created_at_run_time_get_theirs_by_prefix():
    assert retention_of(reply_topic("gateway", "gateway-1")) is REPLIES
    assert retention_of(model_request_topic("p", 3)) is REQUESTS
    assert retention_of(model_request_topic("x" * 300, 3)) is REQUESTS  # the digest form keeps the prefix
    # loupe.inference.heartbeats shares a stem with the model request topics, not their prefix.
    assert retention_of(WORKER_HEARTBEATS) is TABLES
    assert retention_of("some.test.topic") is None


def test_what_each_topic_carries_decides_its_retention():
    assert retention_of(TAGGING_REQUESTS) is REQUESTS
    assert retention_of(INGEST) is STREAM
    for table in (HOSTING_ASSIGNMENTS, WORKER_HEARTBEATS, REPLY_PRESENCE):
        assert retention_of(table) is TABLES
    for spec in CATALOGUE:
        if spec.name.endswith((".commands", ".jobs", ".events")):
            assert spec.retention is DURABLE, spec.name


@pytest.mark.parametrize("retention", [DURABLE, STREAM, REQUESTS, REPLIES, TABLES])
def test_configs_are_valid_kafka_topic_configs_that_let_retention_act(retention: Retention):
    configs = retention.configs()
    assert configs["cleanup.policy"] == "delete"  # never compact: the tables are published without a key
    for name, value in configs.items():
        if name in KAFKA_INT_CONFIGS:
            assert value.lstrip("-").isdigit(), (name, value)
    assert 0 < retention.segment_ms <= retention.ms / 5  # segments roll often enough for retention to act
    assert retention.segment_bytes >= KAFKA_MIN_SEGMENT_BYTES
    assert retention.bytes == -1 or retention.bytes >= 4 * retention.segment_bytes


def test_awaited_records_outlive_their_callers_patience():
    s = settings()
    longest_wait_ms = 1000 * max(s.detect_timeout_seconds, s.request_timeout_seconds)
    assert REQUESTS.ms >= 10 * longest_wait_ms and REPLIES.ms >= 10 * longest_wait_ms
    assert TABLES.ms >= 10 * 1000 * max(s.heartbeat_seconds, s.reply_topic_grace_seconds / 6)


def test_topic_configs_let_the_largest_record_through():
    s = settings()
    configs = kafka.topic_configs(s, INGEST)
    assert int(configs["max.message.bytes"]) >= s.kafka_max_message_bytes
    assert configs["retention.ms"] == str(STREAM.ms)
    assert set(kafka.topic_configs(s, "some.test.topic")) == {"max.message.bytes"}


class FakeAdmin:
    created: list = []
    existing: set[str] = set()

    def __init__(self, **kwargs) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return sorted(self.existing)

    async def create_topics(self, new_topics) -> None:
        FakeAdmin.created += new_topics


async def test_ensure_topics_creates_missing_topics_with_their_configs(monkeypatch):
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", FakeAdmin)
    FakeAdmin.created, FakeAdmin.existing = [], {INGEST}
    s = settings()
    replies, requests = reply_topic("gateway", "g1"), model_request_topic("p", 1)
    created = await kafka.ensure_topics(s, extra=[(replies, 1), (requests, s.topic_partitions)])
    by_name = {t.name: t for t in FakeAdmin.created}
    assert INGEST not in by_name and sorted(created) == sorted(by_name)
    assert set(by_name) == {spec.name for spec in CATALOGUE if spec.name != INGEST} | {replies, requests}
    for name, topic in by_name.items():
        assert topic.topic_configs == kafka.topic_configs(s, name), name
    assert by_name[replies].topic_configs["retention.ms"] == str(REPLIES.ms)
    assert by_name[requests].topic_configs["segment.ms"] == str(REQUESTS.segment_ms)
    assert by_name[requests].num_partitions == s.topic_partitions
