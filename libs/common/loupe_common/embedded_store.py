"""The embedded document store of the local default, made durable.

mongomock-motor keeps a service's collections in memory (same API as motor); this module mirrors
every write into one SQLite file per service and reads the file back when the service starts, so
a crash (even kill -9) or a stop/start of `make run` loses nothing that was acknowledged.

How: a write runs on the synchronous mongomock collection and then, before control returns to the
event loop, the documents it touched are copied (as BSON) into SQLite in one transaction. Both
steps run without an await between them, so no other coroutine can see the write before it is on
disk. SQLite runs in WAL mode with synchronous=NORMAL: a committed write survives the process
dying at any moment; a power cut may lose the last few (the file stays consistent).

One process per file: an exclusive lock refuses a second process (replicas need real MongoDB).
Only the writes Loupe's services use are mirrored; any other write method is refused loudly rather
than silently left out of the file.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.binary import UuidRepresentation
from mongomock_motor import AsyncMongoMockClient

log = logging.getLogger("loupe.store")

CODEC: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True,
                                                   uuid_representation=UuidRepresentation.STANDARD)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    db TEXT NOT NULL, collection TEXT NOT NULL, id BLOB NOT NULL, doc BLOB NOT NULL,
    PRIMARY KEY (db, collection, id)
) WITHOUT ROWID
"""
# Writes mongomock supports that no service uses: refused, so a new use cannot skip the file.
_UNMIRRORED = ("bulk_write", "rename", "save", "find_and_modify", "insert", "update", "remove")


class StoreInUse(RuntimeError):
    pass


class Journal:
    """The SQLite file behind one process's embedded store."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = path.with_suffix(path.suffix + ".lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreInUse(
                f"{path} is used by another running process. The embedded store serves one process; "
                "run replicas against MongoDB (LOUPE_MONGO_URL)."
            ) from None
        self._sql = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._sql.execute("PRAGMA journal_mode=WAL")
        self._sql.execute("PRAGMA synchronous=NORMAL")
        self._sql.execute(_SCHEMA)

    def documents(self) -> Iterable[tuple[str, str, dict]]:
        for db, collection, doc in self._sql.execute("SELECT db, collection, doc FROM documents"):
            yield db, collection, bson.decode(doc, codec_options=CODEC)

    def write(self, db: str, collection: str, put: list[tuple[bytes, bytes]], remove: list[bytes]) -> None:
        with self._sql:  # one transaction
            self._sql.execute("BEGIN")
            if put:
                self._sql.executemany("INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)",
                                      [(db, collection, key, doc) for key, doc in put])
            if remove:
                self._sql.executemany("DELETE FROM documents WHERE db = ? AND collection = ? AND id = ?",
                                      [(db, collection, key) for key in remove])

    def drop(self, db: str, collection: str) -> None:
        with self._sql:
            self._sql.execute("DELETE FROM documents WHERE db = ? AND collection = ?", (db, collection))

    def close(self) -> None:
        self._sql.close()
        self._lock.close()


def _key(doc_id: Any) -> bytes:
    return bson.encode({"_id": doc_id}, codec_options=CODEC)


def _check_encodable(value: Any) -> None:
    """What the real driver would refuse before sending (a set, an unknown class): refuse it here
    too, before the in-memory write, so memory and file never disagree."""
    bson.encode({"v": value}, codec_options=CODEC)


class DurableCollection:
    """A mongomock-motor collection whose writes are mirrored to the journal."""

    def __init__(self, inner: Any, journal: Journal, db_name: str) -> None:
        self._inner = inner
        self._sync = inner._AsyncMongoMockCollection__collection  # mongomock's own (synchronous) collection
        self._journal = journal
        self._db = db_name
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        if name in _UNMIRRORED:
            raise NotImplementedError(f"{name} is not mirrored by the durable embedded store")
        return getattr(self._inner, name)

    # --- the mirror ----------------------------------------------------------------------------

    def _ids(self, filter: Any) -> list[Any]:
        if isinstance(filter, dict) and "_id" in filter and not isinstance(filter["_id"], dict):
            return [filter["_id"]]  # the only candidate; no scan
        return [doc["_id"] for doc in self._sync.find(filter, {"_id": 1})]

    def _mirror(self, ids: Iterable[Any]) -> None:
        store = self._sync._store
        put: list[tuple[bytes, bytes]] = []
        remove: list[bytes] = []
        seen: set[bytes] = set()
        for doc_id in ids:
            key = _key(doc_id)
            if key in seen:
                continue
            seen.add(key)
            if doc_id in store:
                put.append((key, bson.encode(store[doc_id], codec_options=CODEC)))
            else:
                remove.append(key)
        if put or remove:
            self._journal.write(self._db, self.name, put, remove)

    def _modify(self, method: str, filter: Any, *args: Any, **kwargs: Any) -> Any:
        # What a write changes matched its filter before it (or is the upserted document), so
        # the filter is evaluated once.
        touched = self._ids(filter)
        result = getattr(self._sync, method)(filter, *args, **kwargs)
        upserted = getattr(result, "upserted_id", None)
        if upserted is not None:
            touched.append(upserted)
        if isinstance(result, dict) and "_id" in result:
            touched.append(result["_id"])
        self._mirror(touched)
        return result

    # --- writes ----------------------------------------------------------------------------------

    async def insert_one(self, document: dict, *args: Any, **kwargs: Any) -> Any:
        _check_encodable(document)
        result = self._sync.insert_one(document, *args, **kwargs)
        self._mirror([result.inserted_id])
        return result

    async def insert_many(self, documents: list[dict], *args: Any, **kwargs: Any) -> Any:
        _check_encodable(documents)
        try:
            result = self._sync.insert_many(documents, *args, **kwargs)
        except Exception:
            # An ordered insert stops at the first error: what went in before it is kept, as in MongoDB.
            self._mirror([d["_id"] for d in documents if isinstance(d, dict) and "_id" in d])
            raise
        self._mirror(result.inserted_ids)
        return result

    async def update_one(self, filter: dict, update: Any, *args: Any, **kwargs: Any) -> Any:
        _check_encodable(update)
        return self._modify("update_one", filter, update, *args, **kwargs)

    async def update_many(self, filter: dict, update: Any, *args: Any, **kwargs: Any) -> Any:
        _check_encodable(update)
        return self._modify("update_many", filter, update, *args, **kwargs)

    async def replace_one(self, filter: dict, replacement: dict, *args: Any, **kwargs: Any) -> Any:
        _check_encodable(replacement)
        return self._modify("replace_one", filter, replacement, *args, **kwargs)

    async def find_one_and_update(self, filter: dict, update: Any, *args: Any, **kwargs: Any) -> Any:
        _check_encodable(update)
        return self._modify("find_one_and_update", filter, update, *args, **kwargs)

    async def find_one_and_replace(self, filter: dict, replacement: dict, *args: Any, **kwargs: Any) -> Any:
        _check_encodable(replacement)
        return self._modify("find_one_and_replace", filter, replacement, *args, **kwargs)

    async def find_one_and_delete(self, filter: dict, *args: Any, **kwargs: Any) -> Any:
        return self._modify("find_one_and_delete", filter, *args, **kwargs)

    async def delete_one(self, filter: dict, *args: Any, **kwargs: Any) -> Any:
        return self._modify("delete_one", filter, *args, **kwargs)

    async def delete_many(self, filter: dict, *args: Any, **kwargs: Any) -> Any:
        return self._modify("delete_many", filter, *args, **kwargs)

    async def drop(self, *args: Any, **kwargs: Any) -> None:
        self._sync.drop(*args, **kwargs)
        self._journal.drop(self._db, self.name)


class DurableDatabase:
    """A mongomock-motor database whose collections are DurableCollections."""

    def __init__(self, inner: Any, journal: Journal) -> None:
        self._inner = inner
        self._journal = journal
        self.name = inner.name

    def get_collection(self, name: str, *args: Any, **kwargs: Any) -> DurableCollection:
        return DurableCollection(self._inner.get_collection(name, *args, **kwargs), self._journal, self.name)

    def __getitem__(self, name: str) -> DurableCollection:
        return self.get_collection(name)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)  # `db.name` is a collection too, as in motor
        if hasattr(value, "_AsyncMongoMockCollection__collection"):
            return DurableCollection(value, self._journal, self.name)
        return value

    async def drop_collection(self, name: str) -> None:
        await self[name].drop()


def open_durable(path: Path, database: str) -> DurableDatabase:
    """The store kept in `path`: every collection of every database in the file is loaded back."""
    journal = Journal(path)
    client: AsyncMongoMockClient[dict[str, Any]] = AsyncMongoMockClient(tz_aware=True)
    loaded: dict[tuple[str, str], list[dict]] = {}
    for db, collection, doc in journal.documents():
        loaded.setdefault((db, collection), []).append(doc)
    for (db, collection), docs in loaded.items():
        # mongomock's own synchronous collection under the async wrapper (its stubs type only the wrapper).
        inner: Any = client[db].get_collection(collection)._AsyncMongoMockCollection__collection
        inner.insert_many(docs)
    if loaded:
        log.info("embedded store %s: %d documents in %d collections loaded", path,
                 sum(map(len, loaded.values())), len(loaded))
    return DurableDatabase(client[database], journal)
