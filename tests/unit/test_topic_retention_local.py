"""The local broker (Tansu 0.6, memory storage) ignores retention and keeps every record until it
stops, so `make run` with its own broker sends images by claim check: the caller's setting wins,
and a run against an existing Kafka (which does drop records) keeps the services' default."""

from __future__ import annotations

import pytest

import loupe_local.__main__ as make_run
from loupe_local.stack import OWN_BROKER_ENV, Stack


@pytest.fixture
def started_env(monkeypatch, tmp_path):
    """The environment `make run` would start its services with (the start itself is skipped)."""
    monkeypatch.setenv("LOUPE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LOUPE_CLAIM_CHECK_BYTES", raising=False)
    monkeypatch.delenv("LOUPE_KAFKA_BOOTSTRAP", raising=False)
    seen: dict[str, str] = {}

    def start(self: Stack) -> None:
        seen.update(self.env())
        raise KeyboardInterrupt  # stop before anything runs

    monkeypatch.setattr(Stack, "start", start)
    monkeypatch.setattr(make_run.signal, "signal", lambda signum, handler: None)  # keep pytest's handlers

    def run() -> dict[str, str]:
        with pytest.raises(KeyboardInterrupt):
            make_run.run()
        return seen

    return run


def test_own_broker_images_travel_by_claim_check(started_env):
    assert OWN_BROKER_ENV == {"LOUPE_CLAIM_CHECK_BYTES": "0"}
    assert started_env()["LOUPE_CLAIM_CHECK_BYTES"] == "0"


def test_the_callers_setting_wins(started_env, monkeypatch):
    monkeypatch.setenv("LOUPE_CLAIM_CHECK_BYTES", "100000")
    assert started_env()["LOUPE_CLAIM_CHECK_BYTES"] == "100000"


def test_an_existing_kafka_keeps_the_services_default(started_env, monkeypatch):
    monkeypatch.setenv("LOUPE_KAFKA_BOOTSTRAP", "kafka:9092")
    assert "LOUPE_CLAIM_CHECK_BYTES" not in started_env()
