"""s3://bucket/key locations: a local bucket root (LOUPE_S3_ROOT/<bucket>/<key>) or, when
LOUPE_S3_ENDPOINT_URL is set, an S3-compatible store. Calls block: run them in a worker thread."""

from __future__ import annotations

import os
from pathlib import Path

from .settings import Settings


class BucketError(Exception):
    """An object that cannot be read or written; the message is meant for the user."""


def read_file(path: Path, *, max_bytes: int, name: str) -> bytes:
    """A local file of at most max_bytes; `name` is how the user referred to it."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise BucketError(f"object not found: {name}") from None
    if not path.is_file():
        raise BucketError(f"not an object: {name}")
    if size > max_bytes:
        raise BucketError(f"{name} is {size} bytes; the limit is {max_bytes}")
    return path.read_bytes()


class FileRefRefused(BucketError):
    """A file:// reference Loupe may not read (disabled, or outside LOUPE_FILE_REF_ROOTS)."""


class FileRefs:
    """file:// references, one rule for every reader (manifests, the ingest topic): off unless
    LOUPE_ALLOW_FILE_REFS, and only under the folders of LOUPE_FILE_REF_ROOTS, checked after
    symlinks and `..` are resolved. Outside them every path gets the same words, whether a file
    is there or not, so a reference tells nothing about the host."""

    def __init__(self, settings: Settings) -> None:
        self.allowed = settings.allow_file_refs
        self.roots = [Path(r).resolve() for r in settings.file_ref_roots.split(":") if r.strip()]

    def read(self, path: str, *, max_bytes: int) -> bytes:
        name = f"file://{path}"
        if not self.allowed:
            raise FileRefRefused("file:// references are disabled (set LOUPE_ALLOW_FILE_REFS=true)")
        if not path.startswith("/"):
            raise FileRefRefused("file:// references must be absolute local paths")
        resolved = Path(path).resolve()
        if not any(resolved.is_relative_to(root) for root in self.roots):
            raise FileRefRefused(f"{name} is outside the folders file:// references may read "
                                 "(LOUPE_FILE_REF_ROOTS)")
        return read_file(resolved, max_bytes=max_bytes, name=name)


class BucketRoot:
    """s3://bucket/key resolves to <root>/<bucket>/<key>; nothing outside the root is reachable."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def path(self, bucket: str, key: str) -> Path:
        if not bucket or not key or bucket in (".", ".."):
            raise BucketError(f"invalid S3 location s3://{bucket}/{key}")
        path = (self.root / bucket / key).resolve()
        if not path.is_relative_to(self.root / bucket):
            raise BucketError(f"S3 key escapes its bucket: s3://{bucket}/{key}")
        return path

    def read(self, bucket: str, key: str, *, max_bytes: int) -> bytes:
        return read_file(self.path(bucket, key), max_bytes=max_bytes, name=f"s3://{bucket}/{key}")

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
                raise BucketError(f"object not found: s3://{bucket}/{key}") from None
            raise BucketError(f"cannot read s3://{bucket}/{key}: {code}") from None
        except BotoCoreError as exc:
            raise BucketError(f"cannot read s3://{bucket}/{key}: {exc}") from None
        body = response["Body"]
        if response.get("ContentLength", 0) > max_bytes:
            body.close()
            raise BucketError(f"s3://{bucket}/{key} is {response['ContentLength']} bytes; "
                              f"the limit is {max_bytes}")
        data = body.read(max_bytes + 1)
        body.close()
        if len(data) > max_bytes:
            raise BucketError(f"s3://{bucket}/{key} is larger than {max_bytes} bytes")
        return data

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=bucket, Key=key, Body=data)


def open_buckets(settings: Settings) -> BucketRoot | S3Buckets:
    return S3Buckets(settings) if settings.s3_endpoint_url else BucketRoot(settings.bucket_root)
