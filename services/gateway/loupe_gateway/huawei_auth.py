"""Authentication of the Image Recognition routes, as Huawei Cloud does it:

- tokens: POST /v3/auth/tokens with the IAM password body returns X-Subject-Token, valid 24 hours;
  callers send it as X-Auth-Token. A token is self-contained (claims + HMAC), so any gateway
  instance verifies it without shared state.
- AK/SK: `Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=..., Signature=...` with
  X-Sdk-Date, as huaweicloudsdkcore signs (canonical request of method, path segments encoded with
  a trailing '/', sorted query, signed headers, body hash; no credential scope).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, unquote

from loupe_common.access_keys import Area, Role, allows
from loupe_common.errors import HuaweiError
from loupe_common.image_tagging import ERROR_STATUS, ERRORS, TOKEN_LIFETIME_SECONDS
from loupe_common.settings import Settings

from .keyring import KeyRing

MAX_CLOCK_SKEW_SECONDS = 15 * 60
_AKSK = re.compile(r"^SDK-HMAC-SHA256\s+Access=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                   r"\s*Signature=([0-9a-fA-F]+)$")
_EMPTY_HASH = hashlib.sha256(b"").hexdigest()


def huawei_error(code: str, message: str | None = None) -> HuaweiError:
    return HuaweiError(ERROR_STATUS, code, message or ERRORS[code])


@dataclass(frozen=True)
class Caller:
    """Who is calling: the IAM user of a token, or the access key of a signature (rate limits key on it)."""

    identity: str
    project_id: str | None
    role: Role = Role.ADMIN  # a token's IAM user is the configured account's

    def require(self, area: Area, method: str) -> None:
        """ModelArts.4203 unless the caller's role may call a route of this area with this method."""
        if not allows(self.role, area, method):
            raise huawei_error("ModelArts.4203", f"No access permission: the access key's role is "
                               f"{self.role.value}")


# --- tokens ------------------------------------------------------------------------------------


def _token_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_access_key.get_secret_value().encode(), b"loupe-iam-token-v1",
                    hashlib.sha256).digest()


def issue_token(settings: Settings, user: str, project: str | None,
                now: float | None = None) -> tuple[str, dict]:
    issued = int(now if now is not None else time.time())
    claims = {"u": user, "p": project, "iat": issued, "exp": issued + TOKEN_LIFETIME_SECONDS}
    payload = base64.urlsafe_b64encode(
        json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
    signature = hmac.new(_token_key(settings), payload.encode(), hashlib.sha256).hexdigest()
    return f"LOUPE1.{payload}.{signature}", claims


def verify_token(settings: Settings, token: str | None, now: float | None = None) -> Caller:
    if not token:
        raise huawei_error("ModelArts.4101")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != "LOUPE1":
        raise huawei_error("ModelArts.4102")
    _, payload, signature = parts
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        expires = int(claims["exp"])
        user = str(claims["u"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise huawei_error("ModelArts.4102") from None
    expected = hmac.new(_token_key(settings), payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise huawei_error("ModelArts.4103")
    if (now if now is not None else time.time()) >= expires:
        raise huawei_error("ModelArts.4103", "The token is invalid: it expired (tokens are valid for 24 "
                           "hours); get a new one from POST /v3/auth/tokens")
    return Caller(identity=f"user:{user}", project_id=claims.get("p"))


def check_password_body(settings: Settings, body: object) -> tuple[str, str | None]:
    """The user and project of an IAM token request; raises HuaweiError for a wrong shape or password."""
    try:
        identity = body["auth"]["identity"]  # type: ignore[index]
        if "password" not in identity["methods"]:
            raise KeyError("methods")
        user = identity["password"]["user"]
        name, password = str(user["name"]), str(user["password"])
        domain = str(user.get("domain", {}).get("name", ""))
        scope = body["auth"].get("scope") or {}  # type: ignore[index]
        project = scope.get("project", {}).get("name") or scope.get("project", {}).get("id")
    except (KeyError, TypeError, AttributeError):
        raise huawei_error("AIS.0501", "The body must be {\"auth\": {\"identity\": {\"methods\": "
                           "[\"password\"], \"password\": {\"user\": {\"name\", \"password\", "
                           "\"domain\": {\"name\"}}}}, "
                           "\"scope\": {\"project\": {\"name\"}}}}") from None
    good = (hmac.compare_digest(name, settings.iam_user_name)
            and hmac.compare_digest(password, settings.iam_password.get_secret_value())
            and domain in ("", settings.iam_domain_name))
    if not good:
        raise HuaweiError(401, "APIG.0301", "Incorrect IAM authentication information: the user name, "
                          "password or domain is wrong")
    if project is not None and str(project) not in (settings.iam_project_name, settings.iam_project_id):
        raise HuaweiError(401, "APIG.0301", f"Incorrect IAM authentication information: the account has no "
                          f"project {str(project)[:64]!r} (its project is {settings.iam_project_name})")
    return name, (settings.iam_project_id if project is not None else None)


def project_body(settings: Settings) -> dict:
    """The account's one project, as IAM's GET /v3/projects lists it."""
    return {"id": settings.iam_project_id, "name": settings.iam_project_name,
            "domain_id": settings.iam_domain_name, "enabled": True, "is_domain": False,
            "parent_id": settings.iam_domain_name, "description": "",
            "links": {"self": f"/v3/projects/{settings.iam_project_id}"}}


def check_project(caller: Caller, project_id: str) -> None:
    """A caller scoped to one project (a project token, or a signature with X-Project-Id) is not
    served under another project's URL."""
    if caller.project_id is not None and caller.project_id != project_id:
        if caller.identity.startswith("user:"):
            raise huawei_error("ModelArts.4103", f"The token is invalid for project {project_id[:64]}: it is "
                               f"scoped to project {caller.project_id}")
        raise huawei_error("APIG.0301", f"verify aksk signature fail: X-Project-Id {caller.project_id[:64]} "
                           f"is not the project of the URL ({project_id[:64]})")


def token_body(claims: dict, project: str | None, settings: Settings) -> dict:
    def stamp(seconds: int) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

    body = {"token": {"expires_at": stamp(claims["exp"]), "issued_at": stamp(claims["iat"]),
                      "methods": ["password"],
                      "user": {"name": claims["u"], "domain": {"name": settings.iam_domain_name}}}}
    if project:
        body["token"]["project"] = {"id": project, "name": settings.iam_project_name,
                                    "domain": {"name": settings.iam_domain_name}}
    return body


# --- AK/SK ---------------------------------------------------------------------------------------


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_request(method: str, raw_path: str, raw_query: str, headers: dict[str, str], signed: list[str],
                      body: bytes) -> str:
    path = "/".join(_encode(segment) for segment in unquote(raw_path).split("/"))
    if not path.endswith("/"):
        path += "/"
    query = "&".join(f"{_encode(k)}={_encode(v)}"
                     for k, v in sorted(parse_qsl(raw_query, keep_blank_values=True)))
    lines = "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed)
    payload = (headers.get("x-sdk-content-sha256")
               or (hashlib.sha256(body).hexdigest() if body else _EMPTY_HASH))
    return f"{method.upper()}\n{path}\n{query}\n{lines}\n{';'.join(signed)}\n{payload}"


def verify_aksk(keys: KeyRing, method: str, raw_path: str, raw_query: str, headers: dict[str, str],
                body: bytes, now: float | None = None) -> Caller:
    """headers: lower-case names. Raises APIG.0301 for any signature that does not verify."""
    match = _AKSK.match(headers.get("authorization", "").strip())
    if not match:
        raise huawei_error("APIG.0301", "verify aksk signature fail: the Authorization header is not an "
                           "SDK-HMAC-SHA256 signature")
    access, signed_text, signature = match.groups()
    signed = signed_text.lower().split(";")
    key = keys.get(access)
    if key is None:
        raise huawei_error("APIG.0301", "verify aksk signature fail: unknown access key")
    if "x-sdk-date" not in signed or any(name not in headers for name in signed):
        raise huawei_error("APIG.0301", "verify aksk signature fail: X-Sdk-Date and every signed header "
                           "must be sent")
    try:
        signed_at = datetime.strptime(headers["x-sdk-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise huawei_error("APIG.0301",
                           "verify aksk signature fail: X-Sdk-Date must look like 20261121T183223Z") from None
    if abs((now if now is not None else time.time()) - signed_at) > MAX_CLOCK_SKEW_SECONDS:
        raise huawei_error("APIG.0301", "verify aksk signature fail: X-Sdk-Date is more than 15 minutes off")
    if "x-sdk-content-sha256" in headers and headers["x-sdk-content-sha256"] != "UNSIGNED-PAYLOAD" and \
            headers["x-sdk-content-sha256"] != hashlib.sha256(body).hexdigest():
        raise huawei_error("APIG.0301",
                           "verify aksk signature fail: X-Sdk-Content-Sha256 does not match the body")
    canonical = canonical_request(method, raw_path, raw_query, headers, signed, body)
    to_sign = f"SDK-HMAC-SHA256\n{headers['x-sdk-date']}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(key.secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise huawei_error("APIG.0301", "verify aksk signature fail: the signature does not match")
    return Caller(identity=f"ak:{access}", project_id=headers.get("x-project-id"), role=key.role)


# --- rate limit ------------------------------------------------------------------------------------


class RateLimiter:
    """A token bucket per caller (this gateway instance's share of the service's rate limit)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, caller: str, now: float | None = None) -> bool:
        at = now if now is not None else time.monotonic()
        tokens, last = self._buckets.get(caller, (float(self.burst), at))
        tokens = min(float(self.burst), tokens + (at - last) * self.rate)
        if tokens < 1:
            self._buckets[caller] = (tokens, at)
            return False
        self._buckets[caller] = (tokens - 1, at)
        if len(self._buckets) > 10_000:  # forget idle callers
            self._buckets = {k: v for k, v in self._buckets.items() if at - v[1] < 60}
        return True
