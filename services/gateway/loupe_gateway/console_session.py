"""Console sessions: a browser signs in once with an access key and its secret and then calls
Loupe's own routes with a cookie instead of SigV4 signatures; the secret never stays in the browser.
The session acts with the key's role, and ends when the key is disabled or deleted.

The session is a token the gateway signs and checks itself (the gateway keeps no state):
`<payload>.<mac>`, the payload naming the access key, a random session id and the expiry, the MAC
an HMAC-SHA256 under a key derived from the secret access key (so changing the secret ends every
session). Sign-out deletes the cookie; a copied token stays valid until it expires
(LOUPE_CONSOLE_SESSION_HOURS).

Cross-site requests: the cookie is SameSite=Strict and HttpOnly, and every state-changing request
made with it must carry the session's CSRF token (an HMAC of the session id, which only a page of
this origin can read from the session route) in X-Loupe-Csrf and, when the browser sends an Origin,
an Origin naming the gateway's own host.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request

from loupe_common.settings import Settings

from .keyring import Key, KeyRing
from .sigv4 import denied

COOKIE = "loupe_console"
CSRF_HEADER = "x-loupe-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class ConsoleSession:
    key: Key
    session_id: str
    expires_at: float  # epoch seconds
    token: str

    @property
    def access_key_id(self) -> str:
        return self.key.key_id

    def csrf(self, settings: Settings) -> str:
        return _b64(_mac(settings, f"csrf:{self.session_id}".encode()))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, message: bytes) -> bytes:
    key = hmac.new(settings.secret_access_key.get_secret_value().encode(), b"loupe-console-session-v1",
                   hashlib.sha256).digest()
    return hmac.new(key, message, hashlib.sha256).digest()


def issue(settings: Settings, keys: KeyRing, key: Key, now: float | None = None) -> ConsoleSession:
    expires = (now or time.time()) + settings.console_session_hours * 3600
    payload = _b64(json.dumps({"k": key.key_id, "s": secrets.token_hex(16), "e": int(expires)},
                              separators=(",", ":")).encode())
    token = f"{payload}.{_b64(_mac(settings, payload.encode()))}"
    return read(settings, keys, token, now)


def read(settings: Settings, keys: KeyRing, token: str, now: float | None = None) -> ConsoleSession:
    """The session a cookie carries; AccessDenied when it is forged, expired, or its key is no longer
    active."""
    payload, _, mac = token.partition(".")
    try:
        good = hmac.compare_digest(_unb64(mac), _mac(settings, payload.encode()))
        fields = json.loads(_unb64(payload)) if good else None
    except (ValueError, UnicodeDecodeError):
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("k"), str):
        raise denied("The console session is not valid; sign in again")
    if not isinstance(fields.get("e"), int) or fields["e"] <= (now or time.time()):
        raise denied("The console session has expired; sign in again")
    key = keys.get(fields["k"])
    if key is None:
        raise denied("The console session's access key is disabled or deleted; sign in again")
    return ConsoleSession(key, str(fields.get("s", "")), float(fields["e"]), token)


def authenticate(request: Request, settings: Settings, keys: KeyRing) -> ConsoleSession:
    """A request made with the console cookie instead of a signature: the session, and for a
    state-changing method the CSRF token and the origin."""
    session = read(settings, keys, request.cookies.get(COOKIE, ""))
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf(settings).encode()):
            raise denied(f"A console request that changes something must carry the session's {CSRF_HEADER} "
                         "header")
        origin = request.headers.get("origin")
        if origin is not None and not same_origin(request, origin):
            raise denied(f"Requests from {origin} may not use the console session")
    return session


def same_origin(request: Request, origin: str) -> bool:
    """The Origin names this gateway's host and port. The scheme is not compared: behind a proxy
    that ends TLS the browser says https while the gateway sees http."""
    return urlsplit(origin).netloc == request.headers.get("host", request.url.netloc)


def uses_console(request: Request) -> bool:
    """No signature of any kind, and the console cookie: the request is the console's."""
    return ("authorization" not in request.headers and "X-Amz-Signature" not in request.query_params
            and COOKIE in request.cookies)
