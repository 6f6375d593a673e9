"""Console session tokens: made and checked by the gateway alone; forged, expired, re-keyed or
foreign tokens are refused, and the CSRF token is bound to the session."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from loupe_common.errors import LoupeError
from loupe_common.settings import Settings
from loupe_gateway import console_session as cs


def settings(**fields) -> Settings:
    return Settings(console_session_hours=1, **fields)


def test_an_issued_session_reads_back_until_it_expires():
    s = settings()
    session = cs.issue(s, now=1_000_000)
    again = cs.read(s, session.token, now=1_000_000 + 3599)
    assert again.access_key_id == s.access_key_id and again.session_id == session.session_id
    with pytest.raises(LoupeError, match="expired"):
        cs.read(s, session.token, now=1_000_000 + 3600)


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
        cs.read(s, damage(cs.issue(s).token))


def test_a_new_secret_ends_every_session_and_the_csrf_token_is_per_session():
    s = settings()
    first, second = cs.issue(s), cs.issue(s)
    assert first.csrf(s) != second.csrf(s) and first.csrf(s) == cs.read(s, first.token).csrf(s)
    with pytest.raises(LoupeError, match="not valid"):
        cs.read(settings(secret_access_key=SecretStr("another-secret")), first.token)


def test_credentials_must_both_match():
    s = settings()
    secret = s.secret_access_key.get_secret_value()
    assert cs.credentials_match(s, s.access_key_id, secret)
    assert not cs.credentials_match(s, s.access_key_id, secret + "x")
    assert not cs.credentials_match(s, "OTHERKEY", secret)


def test_the_origin_check_compares_host_and_port_not_the_scheme():
    from starlette.requests import Request

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [(b"host", b"loupe.example:8443")],
                       "scheme": "http", "server": ("loupe.example", 8443), "query_string": b""})
    assert cs.same_origin(request, "https://loupe.example:8443")  # TLS ended by a proxy in front
    assert not cs.same_origin(request, "https://loupe.example")
    assert not cs.same_origin(request, "https://evil.example:8443")
