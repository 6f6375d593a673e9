"""The gateway's SigV4 verifier against requests signed by botocore's own signer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from loupe_common.errors import ErrorCode, LoupeError
from loupe_gateway.sigv4 import SignedRequest, verify

KEY, SECRET, REGION = "AKIDEXAMPLE", "secret-example", "us-east-1"


def signed(method: str, url: str, body: bytes = b"", headers: dict | None = None, *,
           service: str = "lookoutvision", secret: str = SECRET, region: str = REGION) -> SignedRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(KEY, secret), service, region).add_auth(request)
    parts = urlsplit(url)
    wire_headers = [(k.lower(), v) for k, v in request.headers.items()]
    wire_headers.append(("host", parts.netloc))
    return SignedRequest(method, parts.path, parts.query, wire_headers, body)


def check(request: SignedRequest, **kw) -> str:
    return verify(request, secret_for={KEY: SECRET}.get, region=REGION, services=frozenset({"lookoutvision"}), **kw)


def denied(request: SignedRequest, **kw) -> str:
    with pytest.raises(LoupeError) as excinfo:
        check(request, **kw)
    assert excinfo.value.error.code is ErrorCode.ACCESS_DENIED
    return excinfo.value.error.message


def test_plain_get_verifies():
    assert check(signed("GET", "http://127.0.0.1:8080/2020-11-20/projects")) == "lookoutvision"


def test_json_body_and_query_verify():
    req = signed("POST", "http://localhost:9/2020-11-20/projects?b=2&a=1&a=0", b'{"ProjectName":"x"}',
                 {"Content-Type": "application/json", "X-Amzn-Client-Token": "tok-1"})
    assert check(req) == "lookoutvision"


def test_percent_encoded_arn_in_path_verifies():
    arn = "arn:aws:lookoutvision:us-east-1:123456789012:project/demo"
    url = "http://127.0.0.1:8080/2020-11-20/tags/" + quote(arn, safe="")
    assert "%2F" in url
    assert check(signed("GET", url)) == "lookoutvision"


def test_repeated_query_keys_verify():
    url = "http://127.0.0.1:8080/2020-11-20/tags/x?tagKeys=b&tagKeys=a%20b&tagKeys=%C3%BC"
    assert check(signed("DELETE", url)) == "lookoutvision"


def test_tampered_body_is_refused():
    req = signed("POST", "http://h/2020-11-20/projects", b'{"ProjectName":"a"}')
    tampered = SignedRequest(req.method, req.raw_path, req.raw_query, req.headers, b'{"ProjectName":"b"}')
    assert "X-Amz-Content-SHA256" in denied(tampered) or "signature" in denied(tampered)


def test_tampered_path_and_query_are_refused():
    req = signed("GET", "http://h/2020-11-20/projects?maxResults=5")
    assert "signature" in denied(SignedRequest("GET", "/2020-11-20/projects/x", req.raw_query, req.headers, b""))
    assert "signature" in denied(SignedRequest("GET", req.raw_path, "maxResults=6", req.headers, b""))


def test_wrong_secret_service_region_and_key():
    url = "http://h/2020-11-20/projects"
    assert "signature" in denied(signed("GET", url, secret="other"))
    assert "service" in denied(signed("GET", url, service="s3"))
    assert "region" in denied(signed("GET", url, region="eu-west-1"))
    req = signed("GET", url)
    with pytest.raises(LoupeError) as excinfo:
        verify(req, secret_for={"OTHERKEY": SECRET}.get, region=REGION, services=frozenset({"lookoutvision"}))
    assert "unknown access key" in excinfo.value.error.message


def test_missing_or_malformed_authorization():
    assert "Missing" in denied(SignedRequest("GET", "/", "", [("host", "h")], b""))
    assert "valid" in denied(SignedRequest("GET", "/", "", [("host", "h"), ("authorization", "Basic abc")], b""))


def test_clock_skew_over_15_minutes_is_refused():
    req = signed("GET", "http://h/2020-11-20/projects")
    assert check(req, now=datetime.now(UTC) + timedelta(minutes=14)) == "lookoutvision"
    assert "expired" in denied(req, now=datetime.now(UTC) + timedelta(minutes=16)).lower()


def test_other_signing_regions_when_the_setting_accepts_them():
    """A client that keeps its own region and changes only the endpoint URL (LOUPE_SIGNING_REGIONS)."""
    eu = signed("GET", "http://127.0.0.1:8080/2020-11-20/projects", region="eu-west-1")
    assert "eu-west-1" in denied(eu)  # the default: LOUPE_REGION only
    assert check(eu, also_regions=frozenset({"eu-west-1"})) == "lookoutvision"
    assert check(eu, also_regions=None) == "lookoutvision"  # *: any region
    assert "ap-south-1" in denied(signed("GET", "http://127.0.0.1:8080/2020-11-20/projects", region="ap-south-1"),
                                  also_regions=frozenset({"eu-west-1"}))
    # The signature is still checked, with the key of the region the client signed for.
    forged = signed("GET", "http://127.0.0.1:8080/2020-11-20/projects", region="eu-west-1", secret="wrong")
    assert "signature" in denied(forged, also_regions=None).lower()


def test_arns_of_accepted_regions_name_the_same_resources():
    from loupe_common.arn import parse_arn
    from loupe_common.settings import Settings

    settings = Settings(_env_file=None, signing_regions="eu-west-1")
    home = parse_arn(settings, "arn:aws:lookoutvision:us-east-1:123456789012:project/p1")
    assert parse_arn(settings, "arn:aws:lookoutvision:eu-west-1:123456789012:project/p1") == home
    with pytest.raises(LoupeError):
        parse_arn(settings, "arn:aws:lookoutvision:ap-south-1:123456789012:project/p1")
    assert Settings(_env_file=None, signing_regions="*").accepts_region("ap-south-1")


async def test_unsigned_and_foreign_requests_are_refused_before_their_body_is_read():
    """The fuzz finding: 16 unauthenticated 13 MiB bodies took the gateway from 113 to 365 MiB."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from starlette.requests import Request

    from loupe_common.settings import Settings
    from loupe_gateway.auth import signed_body
    from loupe_gateway.keyring import KeyRing

    settings = Settings(_env_file=None)
    class NoLookups:  # an unknown key is asked of the human-loop service: here it knows none
        async def request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            from loupe_common.errors import ErrorCode, LoupeError

            raise LoupeError(ErrorCode.NOT_FOUND, "no such key")

    gateway = SimpleNamespace(settings=settings, keys=KeyRing(settings), rpc=NoLookups())
    app = SimpleNamespace(state=SimpleNamespace(gateway=gateway))
    now = datetime.now(UTC)

    async def receive():
        raise AssertionError("the body was read")

    wrong_key = (b"authorization", b"AWS4-HMAC-SHA256 Credential=SOMEONEELSE/" + now.strftime("%Y%m%d").encode()
                 + b"/us-east-1/lookoutvision/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + b"0" * 64)
    signed_now = (b"x-amz-date", now.strftime("%Y%m%dT%H%M%SZ").encode())
    cases = {"Missing Authentication Token": [], "unknown access key": [wrong_key, signed_now]}
    for reason, headers in cases.items():
        scope = {"type": "http", "method": "POST", "path": "/2020-11-20/projects", "raw_path": b"/2020-11-20/projects",
                 "query_string": b"", "headers": [(b"host", b"x"), (b"content-length", b"13000000"), *headers], "app": app}
        with pytest.raises(LoupeError, match=reason):
            await signed_body(20_000_000)(Request(scope, receive))
