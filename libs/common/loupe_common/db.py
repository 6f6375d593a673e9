"""MongoDB access for every service.

Only the API that motor and PyMongo's AsyncMongoClient share is used (motor reached end of life on
2026-05-14), so switching driver is a change in this file alone. Without LOUPE_MONGO_URL the
embedded store is used: mongomock-motor (same API, in memory, per process), kept durable in
<data_dir>/state/<owner>.sqlite3 when a service names itself as the owner (embedded_store.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .settings import Settings

Database = Any  # motor AsyncIOMotorDatabase or mongomock_motor AsyncMongoMockDatabase


_DURABLE: dict[Path, Database] = {}


def state_file(settings: Settings, owner: str) -> Path:
    return (settings.data_dir / "state" / f"{owner}.sqlite3").resolve()


def connect(settings: Settings, database: str | None = None, *, owner: str | None = None) -> Database:
    """The service's database. `owner` (the service's name) makes the embedded store durable;
    without it (tests' scratch databases) the embedded store lives in memory only."""
    name = database or settings.mongo_database
    if settings.mongo_url is None:
        if owner is None or not settings.embedded_store_durable:
            from mongomock_motor import AsyncMongoMockClient

            return AsyncMongoMockClient(tz_aware=True)[name]
        from .embedded_store import open_durable

        path = state_file(settings, owner)
        if path not in _DURABLE:  # one store per file and process, however often it is asked for
            _DURABLE[path] = open_durable(path, name)
        return _DURABLE[path]
    from motor.motor_asyncio import AsyncIOMotorClient

    client: AsyncIOMotorClient[dict[str, Any]] = AsyncIOMotorClient(
        settings.mongo_url.get_secret_value(), tz_aware=True, uuidRepresentation="standard")
    return client[name]


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True
