"""The durable embedded store: every acknowledged write is in the file, a reopened store holds
exactly what memory held, a second process is refused, and kill -9 loses nothing acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

import pymongo
import pytest
from pymongo.errors import DuplicateKeyError
from pymongo.collection import ReturnDocument

from loupe_common.embedded_store import StoreInUse, open_durable


def close(db) -> None:
    db._journal.close()


async def contents(db, name: str) -> list[dict]:
    return await db[name].find({}).sort("_id", 1).to_list(None)


async def test_every_write_kind_survives_a_reopen(tmp_path):
    path = tmp_path / "svc.sqlite3"
    db = open_durable(path, "loupe")
    when = datetime(2026, 12, 6, 23, 0, 1, 123000, tzinfo=UTC)
    await db.things.insert_one({"_id": "a", "n": 1, "at": when, "raw": b"\x00\x01", "tags": {"k": ["v"]}})
    await db.things.insert_many([{"_id": f"m{i}", "n": i, "group": "g"} for i in range(5)])
    await db.things.update_one({"_id": "a"}, {"$inc": {"n": 10}})
    await db.things.update_one({"n": 3}, {"$set": {"picked": True}})          # found by a field, not _id
    await db.things.update_many({"group": "g"}, {"$set": {"seen": 1}})
    await db.things.update_one({"_id": "up"}, {"$set": {"x": 1}}, upsert=True)
    await db.things.replace_one({"_id": "m0"}, {"replaced": True})
    after = await db.things.find_one_and_update({"_id": "fo"}, {"$set": {"y": 2}}, upsert=True,
                                                return_document=ReturnDocument.AFTER)
    assert after == {"_id": "fo", "y": 2}
    await db.things.find_one_and_update({"group": "g", "n": 4}, {"$set": {"group": "h"}})  # leaves its filter
    await db.things.delete_one({"_id": "m1"})
    await db.things.delete_many({"n": {"$gte": 2, "$lt": 4}})
    await db.other.insert_one({"_id": 7, "v": "x"})
    await db.gone.insert_one({"_id": 1})
    await db.gone.drop()
    auto = (await db.things.insert_one({"auto": True})).inserted_id  # an ObjectId id
    expected = {name: await contents(db, name) for name in ("things", "other", "gone")}
    close(db)

    again = open_durable(path, "loupe")
    for name, docs in expected.items():
        assert await contents(again, name) == docs, name
    assert (await again.things.find_one({"_id": auto}))["auto"] is True
    assert (await again.things.find_one({"_id": "a"}))["at"] == when
    assert {str(d["_id"]) for d in expected["things"]} == {"a", "m0", "m4", "up", "fo", str(auto)}
    assert expected["gone"] == [] and expected["other"] == [{"_id": 7, "v": "x"}]
    close(again)


async def test_indexes_created_after_loading_still_hold(tmp_path):
    path = tmp_path / "svc.sqlite3"
    db = open_durable(path, "loupe")
    await db.users.create_index([("name", pymongo.ASCENDING)], unique=True)
    await db.users.insert_one({"_id": 1, "name": "ana"})
    with pytest.raises(DuplicateKeyError):
        await db.users.insert_one({"_id": 2, "name": "ana"})
    close(db)
    again = open_durable(path, "loupe")
    await again.users.create_index([("name", pymongo.ASCENDING)], unique=True)  # as a service does at start
    with pytest.raises(DuplicateKeyError):
        await again.users.insert_one({"_id": 3, "name": "ana"})
    assert await again.users.count_documents({}) == 1
    close(again)


async def test_a_document_the_driver_would_refuse_changes_nothing(tmp_path):
    db = open_durable(tmp_path / "svc.sqlite3", "loupe")
    with pytest.raises(Exception):
        await db.things.insert_one({"_id": 1, "bad": {1, 2}})  # a set is not BSON
    with pytest.raises(Exception):
        await db.things.update_one({"_id": 1}, {"$set": {"bad": object()}}, upsert=True)
    assert await db.things.count_documents({}) == 0
    with pytest.raises(NotImplementedError):
        await db.things.bulk_write([])
    close(db)


def test_a_second_process_is_refused(tmp_path):
    db = open_durable(tmp_path / "svc.sqlite3", "loupe")
    with pytest.raises(StoreInUse, match="another running process"):
        open_durable(tmp_path / "svc.sqlite3", "loupe")
    close(db)
    close(open_durable(tmp_path / "svc.sqlite3", "loupe"))  # free again once the first is gone


WRITER = textwrap.dedent("""
    import asyncio, sys
    from loupe_common.embedded_store import open_durable

    async def main():
        db = open_durable(__import__("pathlib").Path(sys.argv[1]), "loupe")
        i = 0
        while True:
            await db.log.insert_one({"_id": i, "payload": "x" * 200})
            await db.counter.update_one({"_id": "c"}, {"$inc": {"n": 1}}, upsert=True)
            print(i, flush=True)  # acknowledged: both writes of round i returned
            i += 1

    asyncio.run(main())
""")


async def test_kill_9_loses_no_acknowledged_write(tmp_path):
    path = tmp_path / "svc.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    acknowledged = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        acknowledged = int(line)
        if acknowledged >= 300:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    db = open_durable(path, "loupe")
    ids = [d["_id"] for d in await contents(db, "log")]
    assert ids[: acknowledged + 1] == list(range(acknowledged + 1))  # every acknowledged round is there
    counter = (await db.counter.find_one({"_id": "c"}))["n"]
    assert counter in (len(ids), len(ids) - 1)  # killed between the two writes of a round, at most
    close(db)
