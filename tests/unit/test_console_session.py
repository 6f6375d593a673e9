"""Console session tokens: made and checked by the gateway alone; forged, expired, re-keyed or
foreign tokens are refused, and the CSRF token is bound to the session."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from loupe_common.errors import LoupeError
from loupe_common.settings import Settings
from loupe_common.access_keys import KeyStatus, KeyTable, PublishedKey, Role, seal
from loupe_gateway import console_session as cs
from loupe_gateway.keyring import KeyRing


def settings(**fields) -> Settings:
    return Settings(console_session_hours=1, **fields)


def issue(s: Settings, **kw) -> cs.ConsoleSession:
    keys = KeyRing(s)
    return cs.issue(s, keys, keys.get(s.access_key_id), **kw)


def test_an_issued_session_reads_back_until_it_expires():
    s = settings()
    session = issue(s, now=1_000_000)
    again = cs.read(s, KeyRing(s), session.token, now=1_000_000 + 3599)
    assert again.access_key_id == s.access_key_id and again.session_id == session.session_id
    with pytest.raises(LoupeError, match="expired"):
        cs.read(s, KeyRing(s), session.token, now=1_000_000 + 3600)


@pytest.mark.parametrize("damage", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another MAC
    lambda t: "e30" + t[t.index("."):],  # another payload ({}), the old MAC
    lambda t: t.split(".")[0],  # no MAC
    lambda t: "",
    lambda t: "%%%.%%%",
])
def test_a_damaged_token_is_refused(damage):
    s = settings()
    with pytest.raises(LoupeError, match="not valid"):
        cs.read(s, KeyRing(s), damage(issue(s).token))


def test_a_new_secret_ends_every_session_and_the_csrf_token_is_per_session():
    s = settings()
    first, second = issue(s), issue(s)
    assert first.csrf(s) != second.csrf(s) and first.csrf(s) == cs.read(s, KeyRing(s), first.token).csrf(s)
    other = settings(secret_access_key=SecretStr("another-secret"))
    with pytest.raises(LoupeError, match="not valid"):
        cs.read(other, KeyRing(other), first.token)


def test_credentials_must_both_match():
    s = settings()
    keys, secret = KeyRing(s), s.secret_access_key.get_secret_value()
    assert keys.matching(s.access_key_id, secret) == keys.get(s.access_key_id)
    assert keys.matching(s.access_key_id, secret + "x") is None
    assert keys.matching("OTHERKEY", secret) is None


def test_a_session_ends_with_its_key_and_carries_its_role():
    s = settings()
    keys = KeyRing(s)
    table = KeyTable(generation=1, sent_at=datetime.now(UTC), keys=[PublishedKey(
        key_id="LKIAREADER0000000000", role=Role.READ_ONLY, status=KeyStatus.ACTIVE,
        sealed_secret=seal(s.secret_access_key.get_secret_value(), "reader-secret"))])
    asyncio.run(keys.update(table))
    reader = keys.matching("LKIAREADER0000000000", "reader-secret")
    assert reader is not None and reader.role is Role.READ_ONLY
    session = cs.issue(s, keys, reader)
    assert cs.read(s, keys, session.token).key.role is Role.READ_ONLY
    table.keys[0].status = KeyStatus.INACTIVE
    asyncio.run(keys.update(table))
    with pytest.raises(LoupeError, match="disabled or deleted"):
        cs.read(s, keys, session.token)


def test_the_origin_check_compares_host_and_port_not_the_scheme():
    from starlette.requests import Request

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"host", b"loupe.example:8443")],
                       "scheme": "http", "server": ("loupe.example", 8443), "query_string": b""})
    assert cs.same_origin(request, "https://loupe.example:8443")  # TLS ended by a proxy in front
    assert not cs.same_origin(request, "https://loupe.example")
    assert not cs.same_origin(request, "https://evil.example:8443")
