"""Replays of signed changes: refused while the signature's date is accepted, given back for a
retry when the first answer did nothing (5xx, 429), forgotten after, and bounded in memory."""

from __future__ import annotations

import pytest

from loupe_common.errors import ErrorCode, LoupeError
from loupe_gateway.replay_guard import ReplayGuard


def refused(guard: ReplayGuard, signature: str, until: float, now: float) -> str:
    with pytest.raises(LoupeError) as excinfo:
        guard.claim(signature, until, now=now)
    assert excinfo.value.error.code is ErrorCode.ACCESS_DENIED
    return excinfo.value.error.message


def test_a_signature_is_taken_once_while_its_date_is_accepted():
    guard = ReplayGuard()
    guard.claim("sig", 1000, now=100)
    assert "in flight" in refused(guard, "sig", 1000, now=101)
    guard.finish("sig", 200)
    assert "replay" in refused(guard, "sig", 1000, now=999)
    guard.claim("sig", 2000, now=1000)  # its date would be refused by now anyway


@pytest.mark.parametrize("status", [500, 503, 429, 400, 409])
def test_a_retry_of_a_request_that_did_nothing_goes_through(status):
    guard = ReplayGuard()
    guard.claim("sig", 1000, now=100)
    guard.finish("sig", status)
    guard.claim("sig", 1000, now=100.2)  # the SDK's retry within the same second
    guard.finish("sig", 201)
    refused(guard, "sig", 1000, now=101)


def test_requests_idempotent_by_contract_are_not_guarded():
    from loupe_gateway.replay_guard import guarded

    assert guarded("DELETE", "delete_project", {})
    assert guarded("POST", "create_reviewer", {"content-type": "application/json"})
    assert not guarded("DELETE", "delete_project", {"x-amzn-client-token": "t"})  # answered from the store
    assert not guarded("POST", "start_human_loop", {}) and not guarded("POST", "upload_image", {})
    assert not guarded("GET", "list_projects", {})


def test_memory_is_bounded_oldest_first():
    guard = ReplayGuard(max_entries=3)
    for i in range(5):
        guard.claim(f"s{i}", 1000, now=100)
    assert len(guard) == 3
    guard.claim("s0", 1000, now=100)  # forgotten first
    refused(guard, "s4", 1000, now=100)
