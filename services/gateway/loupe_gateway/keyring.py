"""The access keys a gateway accepts: the configured root key (admin) and the active keys of the
human-loop service's key table (re-sent every few seconds). A cache of that table, not state: a
new gateway knows only the root key until the first table arrives."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from loupe_common.access_keys import Area, KeyStatus, KeyTable, Role, allows, unseal
from loupe_common.settings import Settings

from .sigv4 import denied


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

    async def update(self, table: KeyTable) -> None:
        keys: dict[str, Key] = {}
        unsealed: dict[str, str] = {}
        for published in table.keys:
            if published.status is not KeyStatus.ACTIVE or published.key_id == self._root.key_id:
                continue
            secret = (self._unsealed.get(published.sealed_secret)
                      or unseal(self._root.secret, published.sealed_secret))
            if secret is None:  # sealed under another root secret: unusable until re-created
                continue
            unsealed[published.sealed_secret] = secret
            keys[published.key_id] = Key(published.key_id, secret, published.role)
        self._keys, self._unsealed = keys, unsealed

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


def operation(request: Request) -> str:
    """The route's operation name, for messages: create_project -> CreateProject."""
    endpoint = request.scope.get("endpoint")
    name = getattr(endpoint, "__name__", "") or request.url.path
    return "".join(part.capitalize() for part in name.split("_")) if endpoint else name


def require(key: Key, area: Area, request: Request, service: str = "lookoutvision") -> None:
    """AccessDenied unless the key's role may call this route."""
    if not allows(key.role, area, request.method):
        raise denied(f"User: {key.key_id} (role {key.role.value}) is not authorized to perform: "
                     f"{service}:{operation(request)} ({request.method} {request.url.path})")
