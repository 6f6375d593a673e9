"""Every AWS-style and Loupe-native route requires a SigV4 signature made with the configured keys,
or, from the web console, its session cookie (console_session)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from loupe_common.settings import Settings

from . import console_session
from .bodies import read_body
from .sigv4 import SignedRequest, check_credential, verify

LOOKOUT_SERVICES = frozenset({"lookoutvision"})


def signed_body(limit: int, services: frozenset[str] = LOOKOUT_SERVICES) -> Callable[[Request], Awaitable[bytes]]:
    """A dependency that reads the body (at most `limit` bytes), verifies the signature over it
    and hands the body to the route."""

    async def dependency(request: Request) -> bytes:
        settings: Settings = request.app.state.gateway.settings
        if console_session.uses_console(request):
            console_session.authenticate(request, settings)
            return await read_body(request, limit)
        scope = request.scope
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        # Key, scope and date first: an unsigned or foreign request is refused before its body is read.
        check_credential(headers, access_key_id=settings.access_key_id, region=settings.region,
                         also_regions=settings.signing_region_set, services=services)
        body = await read_body(request, limit)
        verify(
            SignedRequest(
                method=request.method,
                raw_path=scope["raw_path"].decode("latin-1"),
                raw_query=scope["query_string"].decode("latin-1"),
                headers=headers,
                body=body,
            ),
            access_key_id=settings.access_key_id,
            secret_access_key=settings.secret_access_key.get_secret_value(),
            region=settings.region,
            also_regions=settings.signing_region_set,
            services=services,
        )
        return body

    return dependency
