"""Server-side AWS Signature Version 4 verification.

The canonical request is rebuilt from the raw, still-encoded path and query as the client sent
them (so an ARN with %2F in the path verifies), the headers the client listed in SignedHeaders,
and the body hash, which is checked against the body itself.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from loupe_common.errors import ErrorCode, LoupeError

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=15)
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


@dataclass(frozen=True)
class SignedRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # lowercase names, in arrival order
    body: bytes


def denied(message: str) -> LoupeError:
    return LoupeError(ErrorCode.ACCESS_DENIED, message)


def _canonical_path(raw_path: str) -> str:
    path = posixpath.normpath(raw_path) if raw_path not in ("", "/") else "/"
    if raw_path.endswith("/") and not path.endswith("/"):
        path += "/"
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    return quote(path, safe="/~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _canonical_headers(headers: Iterable[tuple[str, str]], signed: list[str]) -> str:
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(" ".join(value.split()))
    lines = []
    for name in signed:
        if name not in values:
            raise denied(f"Signed header '{name}' is missing from the request")
        lines.append(f"{name}:{','.join(values[name])}")
    return "\n".join(lines) + "\n"


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@dataclass(frozen=True)
class Credential:
    """What the Authorization header and X-Amz-Date claim, checked before the body is read."""

    key_id: str
    date: str
    region: str
    service: str
    amz_date: str
    signed_headers: list[str]
    signature: str

    @property
    def valid_until(self) -> float:
        """Epoch seconds after which this signature's date is refused."""
        signed_at = datetime.strptime(self.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return (signed_at + MAX_CLOCK_SKEW).timestamp()


def check_credential(
    headers: Iterable[tuple[str, str]],
    *,
    region: str,
    services: frozenset[str],
    also_regions: frozenset[str] | None = frozenset(),
    now: datetime | None = None,
) -> Credential:
    """The checks that need no body: the credential's form and scope and the request's date. A
    gateway runs them, and looks the key up, before reading a body, so an unsigned or foreign
    request never costs the memory of its body. Raises AccessDenied."""
    header = dict(headers)
    authorization = header.get("authorization")
    if not authorization:
        raise denied("Missing Authentication Token: requests must be signed with AWS Signature Version 4")
    match = _AUTH.match(authorization)
    if not match:
        raise denied("Authorization header is not a valid AWS4-HMAC-SHA256 signature")
    try:
        key_id, date, scope_region, service, terminator = match["credential"].split("/")
    except ValueError:
        raise denied("Credential must be <key>/<date>/<region>/<service>/aws4_request") from None
    if terminator != "aws4_request" or service not in services:
        raise denied(f"Credential should be scoped to a valid service: {sorted(services)}")
    if scope_region != region and also_regions is not None and scope_region not in also_regions:
        accepted = ", ".join(sorted({region, *also_regions}))
        raise denied(f"Credential should be scoped to a valid region, not '{scope_region}' (this endpoint "
                     f"accepts {accepted}; see LOUPE_SIGNING_REGIONS)")
    amz_date = header.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise denied("X-Amz-Date is missing or not in the form YYYYMMDD'T'HHMMSS'Z'") from None
    if not amz_date.startswith(date):
        raise denied("Credential date does not match X-Amz-Date")
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        raise denied("Signature expired: X-Amz-Date is more than 15 minutes from the server time")
    signed = match["signed"].split(";")
    if "host" not in signed:
        raise denied("The Host header must be signed")
    # The signing key is derived for the region the client signed for.
    return Credential(key_id, date, scope_region, service, amz_date, signed, match["signature"])


def unknown_key() -> LoupeError:
    return denied("The security token included in the request is invalid (unknown access key)")


def verify(
    request: SignedRequest,
    *,
    secret_for: Callable[[str], str | None],
    region: str,
    services: frozenset[str],
    also_regions: frozenset[str] | None = frozenset(),
    now: datetime | None = None,
) -> str:
    """Check a request's SigV4 signature; returns the signing service name or raises AccessDenied.
    `secret_for` gives a key id's secret (None: unknown key). The credential's region must be
    `region` or one of `also_regions` (None: any region)."""
    credential = check_credential(request.headers, region=region, services=services,
                                  also_regions=also_regions, now=now)
    secret = secret_for(credential.key_id)
    if secret is None:
        raise unknown_key()
    return check_signature(request, credential, secret)


def check_signature(request: SignedRequest, credential: Credential, secret_access_key: str) -> str:
    """The signature over the whole request, under the key's secret; the signing service, or AccessDenied."""
    header = dict(request.headers)
    date, region, service, amz_date = (credential.date, credential.region, credential.service,
                                       credential.amz_date)
    signed = credential.signed_headers
    body_hash = hashlib.sha256(request.body).hexdigest()
    declared = header.get("x-amz-content-sha256")
    if declared is not None and declared != body_hash:
        raise denied("X-Amz-Content-SHA256 does not match the request body")

    canonical = "\n".join(
        [
            request.method.upper(),
            _canonical_path(request.raw_path),
            _canonical_query(request.raw_query),
            _canonical_headers(request.headers, signed),
            ";".join(signed),
            body_hash,
        ]
    )
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, f"{date}/{region}/{service}/aws4_request",
         hashlib.sha256(canonical.encode()).hexdigest()]
    )
    expected = hmac.new(
        _signing_key(secret_access_key, date, region, service), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, credential.signature):
        raise denied(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return service
