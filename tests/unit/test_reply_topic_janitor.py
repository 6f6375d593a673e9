"""The reply-topic janitor's decision: which reply topics belong to processes that are gone."""

from __future__ import annotations

from loupe_common.messages import ReplyTopicsInUse
from loupe_hosting.janitor import ReplyTopicJanitor

LIVE = "loupe.replies.gateway-a"
DEAD = "loupe.replies.gateway-b"
LISTED = [LIVE, DEAD, "loupe.dataset.commands"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def announce(janitor: ReplyTopicJanitor, *topics: str) -> None:
    janitor.heard(ReplyTopicsInUse(process="p", topics=list(topics)))


def test_a_topic_nobody_announces_is_abandoned_after_the_grace_period():
    clock = Clock()
    janitor = ReplyTopicJanitor(60, clock)
    announce(janitor, LIVE)
    assert janitor.abandoned(LISTED) == []  # just seen: the grace period starts now
    for _ in range(6):
        clock.now += 10
        announce(janitor, LIVE)
        found = janitor.abandoned(LISTED)
    assert found == [DEAD]  # other topics than reply topics are never touched


def test_a_new_topic_gets_the_whole_grace_period_before_its_first_announcement():
    clock = Clock()
    janitor = ReplyTopicJanitor(60, clock)
    announce(janitor, LIVE)
    janitor.abandoned([LIVE])
    clock.now += 59
    announce(janitor, LIVE)
    assert janitor.abandoned([LIVE, DEAD]) == []  # DEAD first listed now
    clock.now += 30
    announce(janitor, LIVE)
    assert janitor.abandoned([LIVE, DEAD]) == []
    clock.now += 30
    announce(janitor, LIVE)
    assert janitor.abandoned([LIVE, DEAD]) == [DEAD]


def test_nothing_is_abandoned_while_no_announcement_arrives():
    """No announcements at all (the presence stream stalled, the broker restarted): the janitor
    cannot tell the living from the dead, so it deletes nothing."""
    clock = Clock()
    janitor = ReplyTopicJanitor(60, clock)
    announce(janitor, LIVE)
    janitor.abandoned(LISTED)
    clock.now += 120
    assert janitor.abandoned(LISTED) == []
    announce(janitor, LIVE)
    assert janitor.abandoned(LISTED) == [DEAD]


def test_a_topic_that_came_back_starts_a_new_grace_period():
    clock = Clock()
    janitor = ReplyTopicJanitor(60, clock)
    announce(janitor, LIVE)
    janitor.abandoned(LISTED)
    clock.now += 30
    announce(janitor, LIVE)
    janitor.abandoned([LIVE])  # DEAD deleted by someone (or the broker restarted without it)
    clock.now += 40
    announce(janitor, LIVE)
    assert janitor.abandoned(LISTED) == []  # listed again: seen anew
