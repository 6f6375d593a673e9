"""Blob storage (images, manifests, later model artifacts) behind one small interface:
GridFS when MongoDB is real, a local directory (LOUPE_DATA_DIR/blobs) otherwise."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Protocol

from .db import Database
from .settings import Settings


class BlobNotFound(KeyError):
    pass


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def exists(self, key: str) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def delete_prefix(self, prefix: str) -> int: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobStore:
    """Files under a root directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def _delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if base.is_file():
            base.unlink()
            return 1
        count = 0
        if base.is_dir():
            for path in sorted(base.rglob("*"), reverse=True):
                if path.is_file():
                    path.unlink()
                    count += 1
                else:
                    path.rmdir()
            base.rmdir()
        return count

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    async def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, prefix)


class GridFSBlobStore:
    """GridFS in the shared MongoDB; a key is a GridFS filename, the newest revision wins.

    Not exercised by the local test suite (no MongoDB server here); used by docker-compose and Kubernetes.
    """

    def __init__(self, db: Database, bucket: str = "blobs") -> None:
        from motor.motor_asyncio import AsyncIOMotorGridFSBucket

        self._fs = AsyncIOMotorGridFSBucket(db, bucket_name=bucket)
        self._files = db[f"{bucket}.files"]

    async def put(self, key: str, data: bytes) -> None:
        _check_key(key)
        old = [doc["_id"] async for doc in self._files.find({"filename": key}, {"_id": 1})]
        await self._fs.upload_from_stream(key, data)
        for file_id in old:
            await self._fs.delete(file_id)

    async def get(self, key: str) -> bytes:
        from gridfs.errors import NoFile

        try:
            stream = await self._fs.open_download_stream_by_name(_check_key(key))
        except NoFile:
            raise BlobNotFound(key) from None
        return await stream.read()

    async def exists(self, key: str) -> bool:
        return await self._files.find_one({"filename": _check_key(key)}, {"_id": 1}) is not None

    async def delete(self, key: str) -> None:
        async for doc in self._files.find({"filename": _check_key(key)}, {"_id": 1}):
            await self._fs.delete(doc["_id"])

    async def delete_prefix(self, prefix: str) -> int:
        import re

        count = 0
        query = {"filename": {"$regex": "^" + re.escape(prefix)}}
        async for doc in self._files.find(query, {"_id": 1}):
            await self._fs.delete(doc["_id"])
            count += 1
        return count


def open_blob_store(settings: Settings) -> BlobStore:
    if settings.embedded_store:
        return LocalBlobStore(settings.data_dir / "blobs")
    from .db import connect

    return GridFSBlobStore(connect(settings))
