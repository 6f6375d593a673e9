"""Where Loupe is and who we are: endpoint, region, credentials, the boto3 Lookout client and the
SigV4-signed session for Loupe's native image upload route."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3
import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials, ReadOnlyCredentials

DEFAULT_ENDPOINT_URL = "http://127.0.0.1:8080"
DEFAULT_REGION = "us-east-1"
ENDPOINT_ENV = "LOUPE_ENDPOINT_URL"
REGION_ENV = "AWS_DEFAULT_REGION"
SERVICE_NAME: Final = "lookoutvision"

# The documented local development keys (Loupe's README); a development deployment accepts them,
# production refuses them, so falling back to them is only ever useful against a local Loupe.
DEV_ACCESS_KEY_ID = "LOUPEDEVACCESSKEY"
DEV_SECRET_ACCESS_KEY = "loupe-dev-secret-key"  # noqa: S105 - documented development key (README), refused in production

CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
UPLOAD_TIMEOUT_SECONDS = 60.0
# Delays before each retry of a transport error or HTTP 5xx: three retries after the first try.
RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0)


def resolve_endpoint_url(endpoint_url: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    url = endpoint_url or env.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT_URL
    return url.rstrip("/")


def resolve_region(region: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return region or env.get(REGION_ENV) or DEFAULT_REGION


@dataclass
class Connection:
    """A resolved endpoint + region + credentials; both the boto3 client and the upload session
    are built from the same boto3 session so they sign as the same identity."""

    endpoint_url: str
    region: str
    session: boto3.Session
    used_dev_credentials: bool
    # Overrides how uploads reach the network (an httpx.MockTransport in tests); None = real HTTP.
    upload_transport: httpx.BaseTransport | None = None

    def credentials(self) -> ReadOnlyCredentials:
        # Frozen per call: refreshable credentials (SSO, assumed roles) may rotate mid-import.
        creds = self.session.get_credentials()
        if creds is None:  # resolve_connection always gives the session credentials
            raise RuntimeError("the boto3 session has no credentials")
        return creds.get_frozen_credentials()

    def signed_get(self, path: str, timeout: float = 30) -> httpx.Response:
        """GET a Loupe-native route, SigV4-signed as the SDKs sign."""
        url = f"{self.endpoint_url}{path}"
        request = AWSRequest(method="GET", url=url)
        SigV4Auth(self.credentials(), SERVICE_NAME, self.region).add_auth(request)
        return httpx.get(url, headers=dict(request.headers.items()), timeout=timeout)

    def lookout_client(self) -> Any:
        return self.session.client(
            SERVICE_NAME,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=Config(retries={"total_max_attempts": 3}),
        )


class WaitTimeout(Exception):
    pass


def wait_until(describe: Callable[[], dict], final: set[str], what: str, *,
               on_status: Callable[[dict], None] | None = None, poll_interval: float = 1.0,
               timeout: float = 3600.0) -> dict:
    """Describe every `poll_interval` until the "Status" is final; WaitTimeout after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        found = describe()
        if on_status:
            on_status(found)
        if found["Status"] in final:
            return found
        if time.monotonic() > deadline:
            raise WaitTimeout(f"{what} still {found['Status']} after {timeout:.0f} s")
        time.sleep(poll_interval)


def resolve_connection(endpoint_url: str | None = None, region: str | None = None) -> Connection:
    """Flag > environment > local default for endpoint and region; the normal boto3 credential
    chain, else the development keys (the caller tells the user when that happened)."""
    url = resolve_endpoint_url(endpoint_url)
    region_name = resolve_region(region)
    session = boto3.Session(region_name=region_name)
    if session.get_credentials() is not None:
        return Connection(url, region_name, session, used_dev_credentials=False)
    dev = boto3.Session(
        aws_access_key_id=DEV_ACCESS_KEY_ID,
        aws_secret_access_key=DEV_SECRET_ACCESS_KEY,
        region_name=region_name,
    )
    return Connection(url, region_name, dev, used_dev_credentials=True)


def content_type_for(path: Path) -> str:
    try:
        return CONTENT_TYPES[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path.name}: not a .png, .jpg or .jpeg file") from None


def upload_url(endpoint_url: str, project: str, file_name: str) -> str:
    # Percent-encode to SigV4's canonical form (RFC 3986 unreserved kept) so the query string
    # botocore signs verbatim is the same one the server canonicalises.
    name = urllib.parse.quote(file_name, safe="-_.~")
    project_part = urllib.parse.quote(project, safe="-_.~")
    return f"{endpoint_url}/loupe/v1/projects/{project_part}/images?name={name}"


def sign_upload(
    credentials: Credentials | ReadOnlyCredentials, region: str, url: str, body: bytes, content_type: str
) -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": content_type})
    SigV4Auth(credentials, SERVICE_NAME, region).add_auth(request)
    return request


@dataclass(frozen=True)
class Uploaded:
    path: Path
    source_ref: str
    data: dict[str, Any]


@dataclass(frozen=True)
class UploadFailure:
    path: Path
    code: str
    message: str


def _failure_from_response(path: Path, response: httpx.Response) -> UploadFailure:
    """The AILabTools envelope carries the reason; anything else (a proxy's HTML page) is
    reported by status and a short excerpt."""
    try:
        envelope = response.json()
        detail = envelope.get("error_detail") or {}
        code = detail.get("code") or f"HTTP_{response.status_code}"
        message = detail.get("message") or detail.get("code_message") or response.reason_phrase
        return UploadFailure(path, str(code), str(message))
    except (ValueError, AttributeError):
        return UploadFailure(path, f"HTTP_{response.status_code}",
                             response.text[:200] or response.reason_phrase)


@dataclass
class UploadSession:
    """One httpx client shared by the upload threads (httpx.Client is thread-safe); each request
    is signed on its own because the signature covers the body and the time."""

    connection: Connection
    retry_delays: Sequence[float] = RETRY_DELAYS
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=UPLOAD_TIMEOUT_SECONDS,
                                    transport=self.connection.upload_transport)

    def __enter__(self) -> UploadSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def upload(self, project: str, path: Path) -> Uploaded | UploadFailure:
        """Never raises for a bad image or a network problem: the import goes on without it."""
        try:
            content_type = content_type_for(path)
            body = path.read_bytes()
        except (OSError, ValueError) as exc:
            return UploadFailure(path, "READ_ERROR", str(exc))
        url = upload_url(self.connection.endpoint_url, project, path.name)
        attempts = len(self.retry_delays) + 1
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.retry_delays[attempt - 1])
            # Re-signed per attempt: X-Amz-Date must stay fresh across backoffs.
            request = sign_upload(self.connection.credentials(), self.connection.region, url, body,
                                  content_type)
            try:
                response = self._client.post(url, content=body, headers=dict(request.headers.items()))
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    continue
                return UploadFailure(path, "TRANSPORT_ERROR", f"{type(exc).__name__}: {exc}")
            if response.status_code >= 500 and attempt + 1 < attempts:
                continue
            if response.status_code != 200:
                return _failure_from_response(path, response)
            try:
                data = response.json()["data"]
                return Uploaded(path, str(data["source_ref"]), data)
            except (ValueError, KeyError, TypeError):
                return UploadFailure(path, "BAD_RESPONSE",
                                     f"unexpected upload response: {response.text[:200]}")
        raise AssertionError("unreachable")  # the loop always returns on its last attempt


class NativeCallError(Exception):
    """A Loupe-native call that failed: the envelope's message, or why Loupe was not reached."""


def native_call(conn: Connection, method: str, path: str,
                body: dict[str, Any] | None = None) -> dict[str, Any]:
    """One signed Loupe-native call; the envelope's data, or NativeCallError with its message."""
    data = json.dumps(body).encode() if body is not None else b""
    url = conn.endpoint_url + path
    request = AWSRequest(method=method, url=url, data=data,
                         headers={"Content-Type": "application/json"} if body is not None else {})
    SigV4Auth(conn.credentials(), SERVICE_NAME, conn.region).add_auth(request)
    try:
        response = httpx.request(method, url, content=data, headers=dict(request.headers.items()), timeout=30)
    except httpx.HTTPError as exc:
        raise NativeCallError(f"Loupe at {conn.endpoint_url} is not reachable ({exc})") from None
    try:
        envelope = response.json()
    except ValueError:
        raise NativeCallError(f"HTTP {response.status_code} from {url}") from None
    if response.status_code != 200:
        raise NativeCallError(envelope.get("error_detail", {}).get("message")
                              or f"HTTP {response.status_code}")
    return envelope.get("data") or {}
