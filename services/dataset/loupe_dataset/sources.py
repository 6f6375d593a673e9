"""Reading what a manifest line points at: s3:// under the local bucket root, file:// when
allowed, http(s):// with size, time and address limits (no server-side request forgery)."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote, urlsplit

from loupe_common.buckets import BucketError, BucketRoot, FileRefs, S3Buckets, open_buckets
from loupe_common.fetch import FetchFailed, FetchRefused, fetch_url
from loupe_common.images import MAX_IMAGE_BYTES
from loupe_common.settings import Settings

HTTP_TIMEOUT_SECONDS = 10.0


class SourceError(Exception):
    """A reference that cannot be read; the message is shown to the user per manifest line."""


def _bucket_read(buckets: BucketRoot | S3Buckets, bucket: str, key: str, max_bytes: int) -> bytes:
    try:
        return buckets.read(bucket, key, max_bytes=max_bytes)
    except BucketError as exc:
        raise SourceError(str(exc)) from None


class SourceReader:
    def __init__(self, settings: Settings) -> None:
        self.buckets = open_buckets(settings)
        self.files = FileRefs(settings)
        self.allow_private_urls = settings.allow_private_urls

    async def read(self, ref: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
        parts = urlsplit(ref)
        if parts.scheme == "s3":
            key = parts.path.lstrip("/")
            return await asyncio.to_thread(_bucket_read, self.buckets, parts.netloc, key, max_bytes)
        if parts.scheme == "file":
            return await asyncio.to_thread(self._read_file, parts.netloc, unquote(parts.path), max_bytes)
        if parts.scheme in ("http", "https"):
            return await self._read_http(ref, max_bytes)
        raise SourceError(f"unsupported reference scheme in {ref!r}: use s3://, file:// or https://")

    def _read_file(self, host: str, path: str, max_bytes: int) -> bytes:
        if host not in ("", "localhost"):
            raise SourceError("file:// references must be absolute local paths")
        try:
            return self.files.read(path, max_bytes=max_bytes)
        except BucketError as exc:
            raise SourceError(str(exc)) from None

    async def _read_http(self, ref: str, max_bytes: int) -> bytes:
        try:
            return await fetch_url(ref, allow_private=self.allow_private_urls, max_bytes=max_bytes,
                                   timeout=HTTP_TIMEOUT_SECONDS)
        except (FetchRefused, FetchFailed) as exc:
            raise SourceError(str(exc)) from None
