"""The access keys a gateway accepts: the configured root key (admin) and the active keys of the
human-loop service's key table (re-sent every few seconds). A cache of that table, not state. A key
the table does not have yet (a gateway just started, a table not yet received) is asked of the
human-loop service itself (`lookup`), at most LOOKUPS_PER_SECOND a second per gateway, so random
key ids cannot turn into a flood of lookups."""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass

from fastapi import Request

from loupe_common import human_loop_messages as m
from loupe_common.access_keys import Area, KeyStatus, KeyTable, PublishedKey, Role, allows, unseal
from loupe_common.errors import LoupeError, new_request_id
from loupe_common.kafka import RequestClient
from loupe_common.settings import Settings
from loupe_common.topics import HUMAN_LOOP_COMMANDS

from .sigv4 import denied


LOOKUPS_PER_SECOND = 2.0
LOOKUP_BURST = 10
KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")  # loupe_common.access_keys.KeyId


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: str
    role: Role


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self._root = Key(settings.access_key_id, settings.secret_access_key.get_secret_value(), Role.ADMIN)
        self._keys: dict[str, Key] = {}
        self._unsealed: dict[str, str] = {}  # sealed secret -> secret, so a re-sent table costs no decryption
        self._budget, self._budget_at = float(LOOKUP_BURST), time.monotonic()

    async def update(self, table: KeyTable) -> None:
        keys: dict[str, Key] = {}
        unsealed: dict[str, str] = {}
        for published in table.keys:
            key = self._key(published)
            if key is not None:
                keys[key.key_id] = key
                unsealed[published.sealed_secret] = key.secret
        self._keys, self._unsealed = keys, unsealed

    def _key(self, published: PublishedKey) -> Key | None:
        """The usable key, or None: inactive, the root key's id, or sealed under another root secret."""
        if published.status is not KeyStatus.ACTIVE or published.key_id == self._root.key_id:
            return None
        sealed = published.sealed_secret
        secret = self._unsealed.get(sealed) or unseal(self._root.secret, sealed)
        return None if secret is None else Key(published.key_id, secret, published.role)

    async def lookup(self, rpc: RequestClient, key_id: str) -> Key | None:
        """The key from the human-loop service, when the table has not brought it (rate-limited)."""
        now = time.monotonic()
        self._budget = min(LOOKUP_BURST, self._budget + (now - self._budget_at) * LOOKUPS_PER_SECOND)
        self._budget_at = now
        if self._budget < 1 or not KEY_ID.match(key_id):
            return None
        self._budget -= 1
        try:
            cmd = m.ResolveAccessKey(request_id=new_request_id(), key_id=key_id)
            reply = await rpc.request(HUMAN_LOOP_COMMANDS, cmd, key="access-keys")
            key = self._key(PublishedKey.model_validate(reply.unwrap()))
        except LoupeError:
            return None
        if key is not None:
            self._keys = {**self._keys, key.key_id: key}  # until the next table says otherwise
        return key

    def get(self, key_id: str) -> Key | None:
        if hmac.compare_digest(key_id.encode(), self._root.key_id.encode()):
            return self._root
        return self._keys.get(key_id)

    def matching(self, key_id: str, secret: str) -> Key | None:
        """The key when both id and secret match (a console sign-in), compared in constant time."""
        key = self.get(key_id)
        candidate = key.secret if key else "\0" * 40
        good = hmac.compare_digest(secret.encode(), candidate.encode())
        return key if key is not None and good else None


def endpoint_name(request: Request) -> str:
    """The route function's name (create_project), or "" before routing."""
    return getattr(request.scope.get("endpoint"), "__name__", "")


def operation(request: Request) -> str:
    """The route's operation name, for messages: create_project -> CreateProject."""
    name = endpoint_name(request)
    return "".join(part.capitalize() for part in name.split("_")) if name else request.url.path


def require(key: Key, area: Area, request: Request, service: str = "lookoutvision") -> None:
    """AccessDenied unless the key's role may call this route."""
    if not allows(key.role, area, request.method):
        raise denied(f"User: {key.key_id} (role {key.role.value}) is not authorized to perform: "
                     f"{service}:{operation(request)} ({request.method} {request.url.path})")
