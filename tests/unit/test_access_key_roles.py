"""Roles, sealing and the key table: what each role may call, secrets sealed at rest and readable
only under the same root secret, the human-loop service's key commands, and a gateway's key ring
following the published table."""

from __future__ import annotations

import asyncio

import pytest
from mongomock_motor import AsyncMongoMockClient

from loupe_common import human_loop_messages as m
from loupe_common.access_keys import Area, KeyStatus, Role, allows, new_key_pair, seal, unseal
from loupe_common.errors import ErrorCode, LoupeError
from loupe_common.settings import Settings
from loupe_gateway.keyring import KeyRing
from loupe_human_loop import keys
from loupe_human_loop.store import HumanLoopState


@pytest.mark.parametrize("role, allowed", [
    (Role.ADMIN, {(a, meth) for a in Area for meth in ("GET", "POST", "DELETE")}),
    (Role.READ_ONLY, {(a, "GET") for a in Area if a is not Area.KEYS}),
    (Role.DETECT, {(Area.DETECT, meth) for meth in ("GET", "POST", "DELETE")}),
    (Role.REVIEWER_ADMIN, {(Area.REVIEW, meth) for meth in ("GET", "POST", "DELETE")}),
])
def test_each_role_allows_exactly_its_areas_and_methods(role, allowed):
    every = {(a, meth) for a in Area for meth in ("GET", "POST", "DELETE")}
    assert {case for case in every if allows(role, *case)} == allowed


def test_secrets_are_sealed_and_open_only_under_the_same_root_secret():
    key_id, secret = new_key_pair()
    assert key_id.startswith("LKIA") and len(key_id) == 20 and len(secret) == 40
    sealed = seal("root-one", secret)
    assert secret not in sealed
    assert unseal("root-one", sealed) == secret
    assert unseal("root-two", sealed) is None


@pytest.fixture
def state() -> HumanLoopState:
    changes: list[int] = []
    s = HumanLoopState(settings=Settings(_env_file=None), db=AsyncMongoMockClient(tz_aware=True)["t"], blobs=None,
                       buckets=None, rpc=None, publish_event=None, activations_changed=lambda: None,
                       keys_changed=lambda: changes.append(1))
    s.changes = changes  # type: ignore[attr-defined]
    return s


def test_key_commands_and_the_table_a_gateway_follows(state):
    async def scenario() -> None:
        created = (await keys.create(state, m.CreateAccessKey(request_id="r", role=Role.DETECT,
                                                              description="line 3"))).unwrap()
        key_id, secret = created["access_key_id"], created["secret_access_key"]
        stored = await state.keys.find_one({"_id": key_id})
        assert secret not in str(stored)  # sealed at rest
        listed = (await keys.list_keys(state, m.ListAccessKeys(request_id="r"))).unwrap()["access_keys"]
        assert [k["access_key_id"] for k in listed] == [state.settings.access_key_id, key_id]
        assert all("secret_access_key" not in k for k in listed)

        ring = KeyRing(state.settings)
        assert ring.get(key_id) is None  # until the table arrives
        await ring.update(await keys.key_table(state, 1))
        assert ring.matching(key_id, secret).role is Role.DETECT
        assert ring.matching(key_id, secret + "x") is None

        await keys.update(state, m.UpdateAccessKey(request_id="r", key_id=key_id, status=KeyStatus.INACTIVE))
        await ring.update(await keys.key_table(state, 2))
        assert ring.get(key_id) is None
        await keys.delete(state, m.DeleteAccessKey(request_id="r", key_id=key_id))
        assert (await keys.key_table(state, 3)).keys == []
        assert len(state.changes) == 3  # every change re-sends the table at once

        for command in (m.UpdateAccessKey(request_id="r", key_id=state.settings.access_key_id,
                                          status=KeyStatus.INACTIVE),
                        m.DeleteAccessKey(request_id="r", key_id=state.settings.access_key_id)):
            with pytest.raises(LoupeError) as excinfo:
                await (keys.update if isinstance(command, m.UpdateAccessKey) else keys.delete)(state, command)
            assert excinfo.value.error.code is ErrorCode.VALIDATION
        with pytest.raises(LoupeError) as missing:
            await keys.delete(state, m.DeleteAccessKey(request_id="r", key_id="LKIANOSUCHKEY0000000"))
        assert missing.value.error.code is ErrorCode.NOT_FOUND

    asyncio.run(scenario())


def test_the_root_key_is_always_admin_and_a_table_cannot_replace_it(state):
    ring = KeyRing(state.settings)
    root = ring.get(state.settings.access_key_id)
    assert root is not None and root.role is Role.ADMIN
    from datetime import UTC, datetime

    from loupe_common.access_keys import KeyTable, PublishedKey

    forged = PublishedKey(key_id=state.settings.access_key_id, role=Role.READ_ONLY, status=KeyStatus.ACTIVE,
                          sealed_secret=seal(state.settings.secret_access_key.get_secret_value(), "other"))
    asyncio.run(ring.update(KeyTable(generation=1, sent_at=datetime.now(UTC), keys=[forged])))
    assert ring.get(state.settings.access_key_id) == root


def test_the_key_commands_validate_their_fields():
    with pytest.raises(ValueError):
        m.CreateAccessKey(request_id="r", role="root")
    with pytest.raises(ValueError):
        m.CreateAccessKey(request_id="r", role="detect", description="x" * 257)
    with pytest.raises(ValueError):
        m.UpdateAccessKey(request_id="r", key_id="lower-case", status="Active")


def test_a_key_the_table_has_not_brought_is_asked_for_at_a_bounded_rate(state):
    """A gateway that has not received the table (just started, or its table consumer lags) asks
    the human-loop service for an unknown key, at most LOOKUP_BURST at once and then
    LOOKUPS_PER_SECOND, so random key ids cannot become a flood of lookups."""
    from loupe_gateway.keyring import LOOKUP_BURST

    class Rpc:
        calls = 0

        async def request(self, topic, cmd, key):  # noqa: ANN001, ANN202 - the RequestClient's shape
            Rpc.calls += 1
            return await keys.resolve(state, cmd)

    async def scenario() -> None:
        created = (await keys.create(state, m.CreateAccessKey(request_id="r", role=Role.READ_ONLY))).unwrap()
        ring = KeyRing(state.settings)
        found = await ring.lookup(Rpc(), created["access_key_id"])
        assert found is not None and found.role is Role.READ_ONLY
        assert ring.get(created["access_key_id"]) == found  # kept until the next table
        assert await ring.lookup(Rpc(), "LKIANOSUCHKEY0000000") is None
        assert await ring.lookup(Rpc(), "not a key id") is None  # not even asked
        for _ in range(3 * LOOKUP_BURST):
            await ring.lookup(Rpc(), "LKIANOSUCHKEY0000000")
        assert Rpc.calls <= LOOKUP_BURST + 2  # the burst, and what refilled during the loop

    asyncio.run(scenario())
