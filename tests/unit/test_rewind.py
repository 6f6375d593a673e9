"""The topic keeper's rewind: a partition goes back to 0 only when its consumer sits still past the
log's end on two checks in a row, and at most once in REWIND_QUIET_SECONDS (a broker that reports a
stale end must not make a service replay its commands over and over)."""

from __future__ import annotations

from aiokafka.structs import TopicPartition

from loupe_common import kafka

TP = TopicPartition("loupe.dataset.commands", 1)


class FakeConsumer:
    def __init__(self, position: int, end: int) -> None:
        self.at, self.end, self.seeks = position, end, []

    def assignment(self) -> set:
        return {TP}

    async def position(self, tp: TopicPartition) -> int:
        return self.at

    async def end_offsets(self, tps: list) -> dict:
        return {tp: self.end for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self.at = offset


async def test_a_consumer_stuck_past_the_end_is_rewound_on_the_second_check():
    restarted = FakeConsumer(position=500, end=3)  # the broker came back with a new, short log
    assert await kafka.rewind_if_ahead(restarted) == []
    assert await kafka.rewind_if_ahead(restarted) == [TP] and restarted.seeks == [0]


async def test_a_moving_consumer_is_not_rewound_and_a_second_rewind_waits(monkeypatch):
    stale = FakeConsumer(position=900, end=100)  # reading records the reported end does not count
    for step in range(5):
        stale.at += 10
        assert await kafka.rewind_if_ahead(stale) == []
    assert stale.seeks == []
    clock = [1000.0]
    monkeypatch.setattr(kafka.time, "monotonic", lambda: clock[0])
    stuck = FakeConsumer(position=900, end=100)
    await kafka.rewind_if_ahead(stuck)
    assert await kafka.rewind_if_ahead(stuck) == [TP]
    stuck.at = 900  # past the stale end again at once: not again within the quiet time
    await kafka.rewind_if_ahead(stuck)
    clock[0] += 10
    assert await kafka.rewind_if_ahead(stuck) == [] and stuck.seeks == [0]
    clock[0] += kafka.REWIND_QUIET_SECONDS
    await kafka.rewind_if_ahead(stuck)
    assert await kafka.rewind_if_ahead(stuck) == [TP] and stuck.seeks == [0, 0]
