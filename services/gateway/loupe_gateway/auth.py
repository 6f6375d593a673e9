"""Every AWS-style and Loupe-native route requires a SigV4 signature made with an access key the
gateway knows (keyring), or, from the web console, its session cookie (console_session); and the
key's role must allow the route's area and method (loupe_common.access_keys); a signed request
that changes something is taken once (replay_guard)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from loupe_common.access_keys import Area

from . import console_session
from .bodies import read_body
from .context import Gateway
from .keyring import endpoint_name, require
from .replay_guard import guarded
from .sigv4 import SignedRequest, check_credential, check_signature, unknown_key

LOOKOUT_SERVICES = frozenset({"lookoutvision"})


def signed_body(limit: int, services: frozenset[str] = LOOKOUT_SERVICES,
                area: Area = Area.PROJECTS) -> Callable[[Request], Awaitable[bytes]]:
    """A dependency that authenticates the caller, checks its role may call the route, reads the
    body (at most `limit` bytes), verifies the signature over it and hands the body to the route."""

    async def dependency(request: Request) -> bytes:
        gw: Gateway = request.app.state.gateway
        settings = gw.settings
        if console_session.uses_console(request):
            session = console_session.authenticate(request, settings, gw.keys)
            require(session.key, area, request)
            return await read_body(request, limit)
        scope = request.scope
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        # Key, scope and date first: an unsigned or foreign request is refused before its body is read.
        # The role is checked after the signature, so it is told only to the key's holder.
        credential = check_credential(headers, region=settings.region,
                                      also_regions=settings.signing_region_set, services=services)
        key = gw.keys.get(credential.key_id) or await gw.keys.lookup(gw.rpc, credential.key_id)
        if key is None:
            raise unknown_key()
        body = await read_body(request, limit)
        signed = SignedRequest(method=request.method, raw_path=scope["raw_path"].decode("latin-1"),
                               raw_query=scope["query_string"].decode("latin-1"), headers=headers, body=body)
        check_signature(signed, credential, key.secret)
        require(key, area, request, credential.service)
        if area is not Area.DETECT and guarded(request.method, endpoint_name(request), dict(headers)):
            gw.replays.claim(credential.signature, credential.valid_until)
            # The answer decides whether a retry may send the same signature (replay_guard).
            request.state.on_response = lambda status: gw.replays.finish(credential.signature, status)
        return body

    return dependency
