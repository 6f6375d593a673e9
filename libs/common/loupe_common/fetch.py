"""Downloading an http(s) URL a caller named, without server-side request forgery: only http and
https, the host resolved once and every address checked (no loopback, private, link-local or
otherwise non-public address unless allowed), the connection made to the checked address (so a
second DNS answer cannot point it elsewhere), no redirects, a size and a time limit."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import httpx


class FetchRefused(ValueError):
    """The URL is not one Loupe will fetch (scheme, host, address)."""


class FetchFailed(IOError):
    """The URL was allowed but the download did not succeed (status, size, time, network)."""


async def _checked_address(host: str, allow_private: bool) -> str:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise FetchFailed(f"cannot resolve host {host!r}") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if not address.is_global:
                raise FetchRefused(f"host {host!r} resolves to a non-public address ({address}); "
                                   "set LOUPE_ALLOW_PRIVATE_URLS=true to allow it")
    return str(addresses[0])


async def fetch_url(url: str, *, allow_private: bool, max_bytes: int, timeout: float) -> bytes:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchRefused(f"only http:// and https:// URLs with a host are accepted, not {url[:200]!r}")
    if parts.username or parts.password:
        raise FetchRefused("URLs with credentials are not accepted")
    host = parts.hostname
    address = await _checked_address(host, allow_private)
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    try:
        async with (asyncio.timeout(timeout),
                    httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client):
            async with client.stream("GET", pinned, headers=headers,
                                     extensions={"sni_hostname": host}) as response:
                if response.status_code != 200:
                    raise FetchFailed(f"GET {url[:200]} answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise FetchFailed(f"{url[:200]} is larger than {max_bytes} bytes")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > max_bytes:
                        raise FetchFailed(f"{url[:200]} is larger than {max_bytes} bytes")
                return bytes(data)
    except TimeoutError:
        raise FetchFailed(f"GET {url[:200]} took longer than {timeout:.0f} s") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"GET {url[:200]} failed: {exc.__class__.__name__}") from None
