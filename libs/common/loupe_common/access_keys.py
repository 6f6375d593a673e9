"""Access keys and their roles: which key may call which route.

The key in the settings (LOUPE_ACCESS_KEY_ID / LOUPE_SECRET_ACCESS_KEY) is the first admin key and
cannot be disabled through the API. Further keys are created, disabled and deleted by an admin
(`loupe key …`, /loupe/v1/access-keys); the human-loop service keeps them, the secret sealed, and
publishes the key table on loupe.access.keys, which every gateway follows. The secret itself has
to stay readable: a SigV4 signature is an HMAC under it, so it is sealed (Fernet, under a key derived
from the root secret) rather than hashed, and shown to its creator once.

Each route belongs to an area; a role allows some methods in some areas (`allows`)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, Field, StringConstraints


class Role(StrEnum):
    ADMIN = "admin"  # everything, keys included
    READ_ONLY = "read-only"  # every read (GET), e.g. a dashboard
    DETECT = "detect"  # DetectAnomalies and image tagging, e.g. a camera station
    REVIEWER_ADMIN = "reviewer-admin"  # flow definitions, reviewers, human loops and their outputs


class Area(StrEnum):
    PROJECTS = "projects"  # projects, datasets, entries, uploads, model versions, packaging, tags
    DETECT = "detect"  # DetectAnomalies (AWS and native routes) and image tagging
    REVIEW = "review"  # A2I human loops, flow definitions, reviewers, review outputs
    KEYS = "keys"  # the access keys themselves


class KeyStatus(StrEnum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


READ_METHODS = frozenset({"GET", "HEAD"})


def allows(role: Role, area: Area, method: str) -> bool:
    if role is Role.ADMIN:
        return True
    if role is Role.READ_ONLY:
        return area is not Area.KEYS and method.upper() in READ_METHODS
    if role is Role.DETECT:
        return area is Area.DETECT
    return area is Area.REVIEW  # reviewer-admin


MAX_KEYS = 50  # besides the root key
KEY_ID_PREFIX = "LKIA"
_KEY_ID_CHARS = string.ascii_uppercase + "234567"
KeyId = Annotated[str, StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Z0-9]+$")]
Description = Annotated[str, StringConstraints(max_length=256)]


def new_key_pair() -> tuple[str, str]:
    """(access key id, secret): 20 upper-case characters like AWS's, and 40 URL-safe characters."""
    key_id = KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_CHARS) for _ in range(16))
    return key_id, secrets.token_urlsafe(30)


def _fernet(root_secret: str) -> Fernet:
    # A key of its own for sealing, derived from the root secret (changing it makes sealed keys unreadable).
    key = hashlib.sha256(b"loupe-access-key-seal-v1\0" + root_secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(root_secret: str, secret: str) -> str:
    return _fernet(root_secret).encrypt(secret.encode()).decode()


def unseal(root_secret: str, sealed: str) -> str | None:
    """The secret, or None when it was sealed under another root secret."""
    try:
        return _fernet(root_secret).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


# --- the key table (topic loupe.access.keys) -----------------------------------------------------


class PublishedKey(BaseModel):
    key_id: str
    role: Role
    status: KeyStatus
    sealed_secret: str


class KeyTable(BaseModel):
    generation: int
    sent_at: datetime
    keys: list[PublishedKey] = Field(default_factory=list)
