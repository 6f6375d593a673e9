"""Opaque NextToken values: base64 of a signed JSON position, bound to the listing that issued it.

Tokens match ^[a-zA-Z0-9/+=]{0,2048}$ as the API requires. The signature stops clients from
forging positions; the scope stops a token from one listing (or filter set) being replayed on another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from .errors import validation

_TOKEN_KEY = b"loupe-pagination-v1"


def _sig(scope: str, payload: bytes) -> str:
    return hmac.new(_TOKEN_KEY, scope.encode() + b"\0" + payload, hashlib.sha256).hexdigest()[:16]


def encode_token(scope: str, position: dict[str, Any]) -> str:
    payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    doc = json.dumps({"p": position, "s": _sig(scope, payload)}, separators=(",", ":"), sort_keys=True)
    return base64.b64encode(doc.encode()).decode()


def decode_token(scope: str, token: str) -> dict[str, Any]:
    """The position a token stands for; ValidationException if it is not one this listing issued."""
    try:
        doc = json.loads(base64.b64decode(token, validate=True))
        position = doc["p"]
        payload = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
        if not isinstance(position, dict) or not hmac.compare_digest(doc["s"], _sig(scope, payload)):
            raise ValueError
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise validation("Invalid pagination token: the NextToken was not issued for this request") from None
    return position
