"""Retriable Kafka errors are retried with backoff; other errors surface at once."""

from __future__ import annotations

import pytest
from aiokafka.errors import NotLeaderForPartitionError, UnsupportedVersionError

from loupe_common.kafka import PUBLISH_ATTEMPTS, publish_with_retry


async def test_retriable_errors_are_retried_until_success():
    calls = []

    async def send():
        calls.append(1)
        if len(calls) < 3:
            raise NotLeaderForPartitionError()

    await publish_with_retry(send)
    assert len(calls) == 3


async def test_persistent_or_fatal_errors_surface():
    attempts = []

    async def always_moving():
        attempts.append(1)
        raise NotLeaderForPartitionError()

    with pytest.raises(NotLeaderForPartitionError):
        await publish_with_retry(always_moving)
    assert len(attempts) == PUBLISH_ATTEMPTS

    fatal = []

    async def unsupported():
        fatal.append(1)
        raise UnsupportedVersionError()

    with pytest.raises(UnsupportedVersionError):
        await publish_with_retry(unsupported)
    assert len(fatal) == 1
