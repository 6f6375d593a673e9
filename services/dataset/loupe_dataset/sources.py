"""Reading what a manifest line points at: s3:// under the local bucket root, file:// when
allowed, http(s):// with size, time and address limits (no server-side request forgery)."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from loupe_common.images import MAX_IMAGE_BYTES
from loupe_common.settings import Settings

HTTP_TIMEOUT_SECONDS = 10.0


class SourceError(Exception):
    """A reference that cannot be read; the message is shown to the user per manifest line."""


class BucketRoot:
    """s3://bucket/key resolves to <root>/<bucket>/<key>; nothing outside the root is reachable."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, bucket: str, key: str) -> Path:
        if not bucket or not key or bucket in (".", ".."):
            raise SourceError(f"invalid S3 location s3://{bucket}/{key}")
        path = (self.root / bucket / key).resolve()
        if not path.is_relative_to(self.root / bucket):
            raise SourceError(f"S3 key escapes its bucket: s3://{bucket}/{key}")
        return path

    def read(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        path = self.path(bucket, key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise SourceError(f"object not found: s3://{bucket}/{key}") from None
        if not path.is_file():
            raise SourceError(f"not an object: s3://{bucket}/{key}")
        if size > max_bytes:
            raise SourceError(f"s3://{bucket}/{key} is {size} bytes; the limit is {max_bytes}")
        return path.read_bytes()

    def write(self, bucket: str, key: str, data: bytes) -> None:
        path = self.path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)


class S3Buckets:
    """s3://bucket/key on an S3-compatible endpoint (LOUPE_S3_ENDPOINT_URL); same interface as
    BucketRoot. Calls block: callers run them in a worker thread."""

    def __init__(self, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        secret = settings.s3_secret_access_key
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3},
                          s3={"addressing_style": "path"}),
        )

    def read(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in ("NoSuchKey", "NoSuchBucket", "404"):
                raise SourceError(f"object not found: s3://{bucket}/{key}") from None
            raise SourceError(f"cannot read s3://{bucket}/{key}: {code}") from None
        except BotoCoreError as exc:
            raise SourceError(f"cannot read s3://{bucket}/{key}: {exc}") from None
        body = response["Body"]
        if response.get("ContentLength", 0) > max_bytes:
            body.close()
            raise SourceError(f"s3://{bucket}/{key} is {response['ContentLength']} bytes; the limit is {max_bytes}")
        data = body.read(max_bytes + 1)
        body.close()
        if len(data) > max_bytes:
            raise SourceError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
        return data

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=data)


class SourceReader:
    def __init__(self, settings: Settings) -> None:
        self.buckets: BucketRoot | S3Buckets = (
            S3Buckets(settings) if settings.s3_endpoint_url else BucketRoot(settings.bucket_root)
        )
        self.allow_file_refs = settings.allow_file_refs
        self.allow_private_urls = settings.allow_private_urls

    async def read(self, ref: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
        parts = urlsplit(ref)
        if parts.scheme == "s3":
            key = parts.path.lstrip("/")
            return await asyncio.to_thread(self.buckets.read, parts.netloc, key, max_bytes=max_bytes)
        if parts.scheme == "file":
            return await asyncio.to_thread(self._read_file, parts.netloc, unquote(parts.path), max_bytes)
        if parts.scheme in ("http", "https"):
            return await self._read_http(ref, parts.hostname or "", max_bytes)
        raise SourceError(f"unsupported reference scheme in {ref!r}: use s3://, file:// or https://")

    def _read_file(self, host: str, path: str, max_bytes: int) -> bytes:
        if not self.allow_file_refs:
            raise SourceError("file:// references are disabled (set LOUPE_ALLOW_FILE_REFS=true)")
        if host not in ("", "localhost") or not path.startswith("/"):
            raise SourceError("file:// references must be absolute local paths")
        file = Path(path)
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            raise SourceError(f"file not found: {path}") from None
        if not file.is_file():
            raise SourceError(f"not a file: {path}")
        if size > max_bytes:
            raise SourceError(f"{path} is {size} bytes; the limit is {max_bytes}")
        return file.read_bytes()

    async def _check_host(self, host: str) -> None:
        if self.allow_private_urls:
            return
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            raise SourceError(f"cannot resolve host {host!r}") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global:
                raise SourceError(
                    f"host {host!r} resolves to a non-public address ({address}); "
                    "set LOUPE_ALLOW_PRIVATE_URLS=true to allow it"
                )

    async def _read_http(self, ref: str, host: str, max_bytes: int) -> bytes:
        await self._check_host(host)
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, follow_redirects=False) as client:
                async with client.stream("GET", ref) as response:
                    if response.status_code != 200:
                        raise SourceError(f"GET {ref} answered HTTP {response.status_code}")
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data += chunk
                        if len(data) > max_bytes:
                            raise SourceError(f"{ref} is larger than {max_bytes} bytes")
                    return bytes(data)
        except httpx.HTTPError as exc:
            raise SourceError(f"GET {ref} failed: {exc.__class__.__name__}") from None
