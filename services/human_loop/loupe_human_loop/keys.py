"""Access keys besides the root key (see loupe_common.access_keys): kept here with the other
identities (reviewers), each secret sealed, and published as the key table every gateway follows."""

from __future__ import annotations

from typing import Any

from loupe_common import human_loop_messages as m
from loupe_common.access_keys import MAX_KEYS, KeyStatus, KeyTable, PublishedKey, new_key_pair, seal
from loupe_common.errors import ErrorCode, LoupeError
from loupe_common.messages import Reply

from .loops import iso
from .store import HumanLoopState, now


def _view(key: dict[str, Any]) -> dict[str, Any]:
    return {"access_key_id": key["_id"], "role": key["role"], "status": key["status"],
            "description": key.get("description", ""), "created_at": iso(key["created_at"])}


def _root_view(state: HumanLoopState) -> dict[str, Any]:
    return {"access_key_id": state.settings.access_key_id, "role": "admin", "status": KeyStatus.ACTIVE.value,
            "description": "the configured key (LOUPE_ACCESS_KEY_ID); change it in the settings",
            "created_at": None}


async def create(state: HumanLoopState, cmd: m.CreateAccessKey) -> Reply:
    if await state.keys.count_documents({}) >= MAX_KEYS:
        raise LoupeError(ErrorCode.QUOTA_EXCEEDED, f"At most {MAX_KEYS} access keys besides the configured "
                         "one; delete one first")
    key_id, secret = new_key_pair()
    key = {"_id": key_id, "role": cmd.role.value, "status": KeyStatus.ACTIVE.value,
           "description": cmd.description,
           "sealed_secret": seal(state.settings.secret_access_key.get_secret_value(), secret),
           "created_at": now()}
    await state.keys.insert_one(key)
    state.keys_changed()
    # The only time the secret leaves the service in clear.
    return Reply.success({**_view(key), "secret_access_key": secret})


async def list_keys(state: HumanLoopState, cmd: m.ListAccessKeys) -> Reply:
    found = await state.keys.find({}).sort("created_at", 1).to_list(length=None)
    return Reply.success({"access_keys": [_root_view(state), *(_view(k) for k in found)]})


def _not_changeable(state: HumanLoopState, key_id: str) -> None:
    if key_id == state.settings.access_key_id:
        raise LoupeError(ErrorCode.VALIDATION, "The configured key cannot be changed here: change "
                         "LOUPE_ACCESS_KEY_ID / LOUPE_SECRET_ACCESS_KEY in the settings")


async def update(state: HumanLoopState, cmd: m.UpdateAccessKey) -> Reply:
    _not_changeable(state, cmd.key_id)
    key = await state.keys.find_one_and_update({"_id": cmd.key_id}, {"$set": {"status": cmd.status.value}},
                                               return_document=True)
    if key is None:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Access key {cmd.key_id} does not exist")
    state.keys_changed()
    return Reply.success(_view(key))


async def delete(state: HumanLoopState, cmd: m.DeleteAccessKey) -> Reply:
    _not_changeable(state, cmd.key_id)
    if (await state.keys.delete_one({"_id": cmd.key_id})).deleted_count == 0:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Access key {cmd.key_id} does not exist")
    state.keys_changed()
    return Reply.success({})


async def resolve(state: HumanLoopState, cmd: m.ResolveAccessKey) -> Reply:
    key = await state.keys.find_one({"_id": cmd.key_id, "status": KeyStatus.ACTIVE.value})
    if key is None:
        raise LoupeError(ErrorCode.NOT_FOUND, f"Access key {cmd.key_id} does not exist or is disabled")
    return Reply.success(_published(key).model_dump(mode="json"))


def _published(key: dict[str, Any]) -> PublishedKey:
    return PublishedKey(key_id=key["_id"], role=key["role"], status=key["status"],
                        sealed_secret=key["sealed_secret"])


async def key_table(state: HumanLoopState, generation: int) -> KeyTable:
    found = await state.keys.find({}).to_list(length=None)
    return KeyTable(generation=generation, sent_at=now(), keys=[_published(k) for k in found])
