"""MongoDB access for every service.

Only the API that motor and PyMongo's AsyncMongoClient share is used (motor reached end of life on
2026-05-14), so switching driver is a change in this file alone. Without LOUPE_MONGO_URL the
embedded mongomock-motor store is used: same API, in memory, per process, not durable.
"""

from __future__ import annotations

from typing import Any

from .settings import Settings

Database = Any  # motor AsyncIOMotorDatabase or mongomock_motor AsyncMongoMockDatabase


def connect(settings: Settings, database: str | None = None) -> Database:
    name = database or settings.mongo_database
    if settings.mongo_url is None:
        from mongomock_motor import AsyncMongoMockClient

        return AsyncMongoMockClient(tz_aware=True)[name]
    from motor.motor_asyncio import AsyncIOMotorClient

    client = AsyncIOMotorClient(settings.mongo_url.get_secret_value(), tz_aware=True, uuidRepresentation="standard")
    return client[name]


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False
    return True
