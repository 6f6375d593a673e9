"""Image Recognition authentication and request rules: SDK-HMAC-SHA256 signatures checked against
huaweicloudsdkcore's own signer, tokens and their 24-hour lifetime, the body's field rules."""

from __future__ import annotations

import json
import time

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from loupe_common.errors import HuaweiError
from loupe_common.settings import DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, Settings
from loupe_gateway.huawei_auth import RateLimiter, issue_token, verify_aksk, verify_token
from loupe_gateway.keyring import KeyRing
from loupe_gateway.routes.image_tagging import check_image, parse_params

SETTINGS = Settings(_env_file=None)
KEYS = KeyRing(SETTINGS)


def signed(body: bytes, *, path: str = "/v2/0a1b/image/tagging", query=None, secret=DEV_SECRET_ACCESS_KEY):
    """Headers (lower-case) and the raw path/query, exactly as the SDK sends them."""
    request = SdkRequest(method="POST", schema="http", host="127.0.0.1:8080", resource_path=path,
                         query_params=list(query or []), body=body,
                         header_params={"Content-Type": "application/json;charset=UTF-8", "X-Project-Id": "0a1b"})
    Signer(BasicCredentials(DEV_ACCESS_KEY_ID, secret, "0a1b")).sign(request)
    headers = {k.lower(): v for k, v in request.header_params.items()}
    raw_query = request.uri.split("?", 1)[1] if "?" in request.uri else ""
    return headers, path, raw_query


def code(excinfo) -> str:
    return excinfo.value.code


def test_a_signature_made_by_the_sdk_verifies():
    body = json.dumps({"url": "https://example.com/a.jpg"}).encode()
    headers, path, query = signed(body)
    caller = verify_aksk(KEYS, "POST", path, query, headers, body)
    assert caller.identity == f"ak:{DEV_ACCESS_KEY_ID}" and caller.project_id == "0a1b"
    headers, path, query = signed(body, query=[("b", "x y"), ("a", "1")])
    verify_aksk(KEYS, "POST", path, query, headers, body)


@pytest.mark.parametrize("tamper", ["body", "secret", "date", "header", "scheme"])
def test_tampered_signatures_are_refused(tamper):
    body = b'{"url": "https://example.com/a.jpg"}'
    headers, path, query = signed(body, secret="other-secret" if tamper == "secret" else DEV_SECRET_ACCESS_KEY)
    now = None
    if tamper == "body":
        body = body.replace(b"a.jpg", b"b.jpg")
    elif tamper == "date":
        now = time.time() + 16 * 60
    elif tamper == "header":
        headers["x-project-id"] = "other"
    elif tamper == "scheme":
        headers["authorization"] = headers["authorization"].replace("SDK-HMAC-SHA256", "AWS4-HMAC-SHA256")
    with pytest.raises(HuaweiError) as refused:
        verify_aksk(KEYS, "POST", path, query, headers, body, now=now)
    assert code(refused) == "APIG.0301" and refused.value.status == 400


def test_tokens_live_24_hours_and_cannot_be_forged():
    issued = time.time()
    token, claims = issue_token(SETTINGS, "loupe", "cn-north-4", now=issued)
    assert claims["exp"] - claims["iat"] == 24 * 3600
    assert verify_token(SETTINGS, token, now=issued + 24 * 3600 - 1).identity == "user:loupe"
    with pytest.raises(HuaweiError) as expired:
        verify_token(SETTINGS, token, now=issued + 24 * 3600)
    assert code(expired) == "ModelArts.4103" and "expired" in expired.value.message
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{'0' * len(signature)}"
    for bad, expected in ((None, "ModelArts.4101"), ("", "ModelArts.4101"), ("not-a-token", "ModelArts.4102"),
                          ("LOUPE1.!!!.00", "ModelArts.4102"), (forged, "ModelArts.4103")):
        with pytest.raises(HuaweiError) as refused:
            verify_token(SETTINGS, bad)
        assert code(refused) == expected
    other = Settings(_env_file=None, secret_access_key="another-secret-key")
    with pytest.raises(HuaweiError) as wrong_key:
        verify_token(other, token, now=issued)
    assert code(wrong_key) == "ModelArts.4103"


def test_field_rules_and_defaults():
    params, image, url = parse_params({"url": "https://x/y.jpg"}, "v1")
    assert (params.language, params.limit, params.threshold, image, url) == ("zh", 30, 0.0, None, "https://x/y.jpg")
    params, _, _ = parse_params({"image": "aGk=", "threshold": 101}, "v2")
    assert (params.limit, params.threshold) == (50, 60.0)  # out of range: the default, as the reference says
    assert parse_params({"image": "aGk=", "threshold": -1}, "v1")[0].threshold == 0.0
    assert parse_params({"image": "aGk=", "threshold": 12.5, "limit": 3, "language": "en"}, "v1")[0].limit == 3
    for fields, expected in (({}, "AIS.0501"), ({"image": "aGk=", "url": "https://x"}, "AIS.0501"),
                             ({"image": "aGk=", "language": "fr"}, "AIS.0501"), ({"image": "aGk=", "limit": 0}, "AIS.0501"),
                             ({"image": "aGk=", "limit": "5"}, "AIS.0501"), ({"image": "aGk=", "threshold": "high"}, "AIS.0501"),
                             ({"image": "aGk=", "colour": "red"}, "AIS.0012"), ({"image": 5}, "AIS.0501")):
        with pytest.raises(HuaweiError) as refused:
            parse_params(fields, "v1")
        assert code(refused) == expected, fields


def image_bytes(width: int, height: int, fmt: str) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(out, format=fmt)
    return out.getvalue()


def test_image_rules_of_the_reference():
    for fmt in ("JPEG", "PNG", "BMP"):
        check_image(image_bytes(16, 4096, fmt))
    for data, expected in ((image_bytes(15, 300, "PNG"), "AIS.0504"), (image_bytes(4097, 20, "PNG"), "AIS.0504"),
                           (image_bytes(64, 64, "GIF"), "AIS.0502"), (b"not an image at all", "AIS.0502"),
                           (b"", "AIS.0503"), (b"\0" * (10 * 1024 * 1024 + 1), "AIS.0504")):
        with pytest.raises(HuaweiError) as refused:
            check_image(data)
        assert code(refused) == expected


def test_rate_limit_is_a_bucket_per_caller():
    limiter = RateLimiter(rate=2, burst=3)
    assert [limiter.allow("a", now=0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", now=0)
    assert limiter.allow("a", now=0.5) and not limiter.allow("a", now=0.5)


def test_a_caller_scoped_to_a_project_is_served_under_that_project_only():
    from loupe_gateway.huawei_auth import Caller, check_project

    check_project(Caller("user:loupe", None), "any")  # an unscoped token: any project
    check_project(Caller("user:loupe", "p1"), "p1")
    with pytest.raises(HuaweiError) as excinfo:
        check_project(Caller("user:loupe", "p1"), "p2")
    assert excinfo.value.body()["error_code"] == "ModelArts.4103"
    with pytest.raises(HuaweiError) as excinfo:
        check_project(Caller("ak:KEY", "p1"), "p2")
    assert excinfo.value.body()["error_code"] == "APIG.0301"
