"""Image Recognition tagging against the real stack: unmodified huaweicloudsdkimage (AK/SK) for v2,
plain HTTP with X-Auth-Token for v1 and v2, every error code of the reference, the SSRF guard,
the token lifetime and X-Request-Id. The models are the real exported EfficientNet-Lite0 classifier
and NanoDet detector, run by the inference workers."""

from __future__ import annotations

import base64
import io
import json
import time

import httpx
import pytest
from PIL import Image

from helpers import DEV_KEY, DEV_SECRET, IAM_BODY

PROJECT_ID = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"  # the development account's project (LOUPE_IAM_PROJECT_ID)


def photo(name: str, fmt: str = "JPEG") -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(getattr(data, name)()).convert("RGB").save(out, format=fmt)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def token(stack) -> str:
    r = httpx.post(stack.endpoint_url + "/v3/auth/tokens", json=IAM_BODY)
    assert r.status_code == 201, r.text
    assert r.json()["token"]["methods"] == ["password"] and r.headers["x-request-id"]
    return r.headers["x-subject-token"]


def tag(stack, token: str | None, body: dict | bytes, version: str = "v1", headers: dict | None = None) -> httpx.Response:
    path = "/v1.0/image/tagging" if version == "v1" else f"/v2/{PROJECT_ID}/image/tagging"
    sent = {"Content-Type": "application/json", **({"X-Auth-Token": token} if token else {}), **(headers or {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(stack.endpoint_url + path, content=content, headers=sent, timeout=60)


@pytest.fixture(scope="module")
def sdk(stack):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkimage.v2 import ImageClient

    return ImageClient.new_builder().with_credentials(BasicCredentials(DEV_KEY, DEV_SECRET, PROJECT_ID)) \
        .with_endpoint(stack.endpoint_url).build()


def sdk_tag(sdk, **fields):
    from huaweicloudsdkimage.v2 import ImageTaggingReq, RunImageTaggingRequest

    return sdk.run_image_tagging(RunImageTaggingRequest(body=ImageTaggingReq(**fields)))


def test_v1_with_a_token_tags_the_cat(stack, token):
    r = tag(stack, token, {"image": b64(photo("chelsea")), "language": "en", "limit": 5})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"]
    tags = r.json()["result"]["tags"]
    assert 1 <= len(tags) <= 5
    assert any("cat" in t["tag"] for t in tags[:3]), tags
    confidences = [t["confidence"] for t in tags]
    assert all(isinstance(c, float) and 0 <= c <= 100 for c in confidences) and confidences == sorted(confidences, reverse=True)
    for t in tags:
        assert t["type"] in ("object", "scene", "concept") and t["i18n_tag"]["en"] == t["tag"] and t["i18n_tag"]["zh"]
    chinese = tag(stack, token, {"image": b64(photo("chelsea")), "limit": 5}).json()["result"]["tags"]
    assert chinese[0]["tag"] == tags[0]["i18n_tag"]["zh"]  # zh is the default
    names = [t["tag"] for t in chinese]
    assert names == [t["i18n_tag"]["zh"] for t in chinese] and len(set(names)) == len(names)


def test_v1_threshold_and_limit(stack, token):
    image = b64(photo("coffee"))
    everything = tag(stack, token, {"image": image, "language": "en", "limit": 1000}).json()["result"]["tags"]
    assert len(everything) > 5  # v1's default threshold is 0: weak tags too
    strong = tag(stack, token, {"image": image, "language": "en", "threshold": 20, "limit": 1000}).json()["result"]["tags"]
    assert strong and all(t["confidence"] >= 20 for t in strong) and len(strong) < len(everything)
    out_of_range = tag(stack, token, {"image": image, "language": "en", "threshold": 150, "limit": 1000}).json()
    assert len(out_of_range["result"]["tags"]) == len(everything)  # beyond 0..100: the default (0)


def test_v2_with_the_sdk_finds_the_astronaut(sdk):
    response = sdk_tag(sdk, image=b64(photo("astronaut")), language="en", limit=20, threshold=10)
    tags = response.result.tags
    people = [t for t in tags if t.type == "Human"]
    assert people, [(t.tag, t.type) for t in tags]
    boxes = [i.bounding_box for t in people for i in t.instances]
    assert boxes, "the person detector found no box"
    box = max(boxes, key=lambda b: b.width * b.height)
    assert 0 <= box.top_left_x < 512 and 0 <= box.top_left_y < 512 and box.width > 100 and box.height > 100
    assert box.top_left_x + box.width <= 512.5 and box.top_left_y + box.height <= 512.5
    for t in tags:
        assert isinstance(t.confidence, str) and 10 <= float(t.confidence) <= 100
        assert t.i18n_type.en and t.i18n_type.zh and t.i18n_tag.zh


def test_v2_defaults_and_chinese(stack, token):
    r = tag(stack, token, {"image": b64(photo("chelsea"))}, version="v2")
    assert r.status_code == 200, r.text
    tags = r.json()["result"]["tags"]
    assert len(tags) <= 50 and all(float(t["confidence"]) >= 60 for t in tags)  # v2 defaults: 50, 60
    assert tags and all(t["tag"] == t["i18n_tag"]["zh"] and t["type"] == t["i18n_type"]["zh"] for t in tags)
    assert any(t["i18n_type"]["en"] == "Animal" for t in tags), tags


def test_the_sdk_finds_the_project_id_of_its_region(stack):
    """A client built with keys and a region but no project id (as Huawei's samples build it) asks
    IAM for the region's project (GET /v3/projects?name=<region>) and uses its id."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.region.region import Region
    from huaweicloudsdkimage.v2 import ImageClient

    credentials = BasicCredentials(DEV_KEY, DEV_SECRET).with_iam_endpoint(stack.endpoint_url)
    client = ImageClient.new_builder().with_credentials(credentials) \
        .with_region(Region("cn-north-4", stack.endpoint_url)).build()
    response = sdk_tag(client, image=b64(photo("chelsea")), language="en", limit=5)
    assert response.result.tags and credentials.project_id == PROJECT_ID
    other = BasicCredentials(DEV_KEY, DEV_SECRET).with_iam_endpoint(stack.endpoint_url)
    with pytest.raises(Exception, match="cn-south-1"):  # the account has no project there
        sdk_tag(ImageClient.new_builder().with_credentials(other)
                .with_region(Region("cn-south-1", stack.endpoint_url)).build(), image=b64(photo("chelsea")))


def test_a_token_scoped_to_a_project_serves_that_project_only(stack, token):
    image = {"image": b64(photo("chelsea")), "limit": 5}
    assert tag(stack, token, image, version="v2").status_code == 200
    elsewhere = httpx.post(f"{stack.endpoint_url}/v2/ffffffffffffffffffffffffffffffff/image/tagging",
                           json=image, headers={"X-Auth-Token": token}, timeout=60)
    assert elsewhere.status_code == 400 and elsewhere.json()["error_code"] == "ModelArts.4103", elsewhere.text
    unknown = httpx.post(stack.endpoint_url + "/v3/auth/tokens", json={
        "auth": {**IAM_BODY["auth"], "scope": {"project": {"name": "cn-south-1"}}}})
    assert unknown.status_code == 401 and "cn-south-1" in unknown.json()["error_msg"]
    assert tag(stack, token, {**image, "limit": 151}, version="v2").json()["error_code"] == "AIS.0501"  # at most 150


def test_sdk_errors_come_back_as_the_sdk_expects(sdk):
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

    with pytest.raises(ClientRequestException) as refused:
        sdk_tag(sdk, image=b64(b"GIF89a" + b"\0" * 64))
    assert refused.value.status_code == 400 and refused.value.error_code == "AIS.0502"
    assert refused.value.request_id


def png_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def jpeg_of(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.mark.parametrize("body, expected", [
    (b"{not json", "AIS.0014"),
    ({"image": "aGVsbG8=", "colour": "red"}, "AIS.0012"),
    ({}, "AIS.0501"),
    ({"image": "aGVsbG8=", "url": "https://example.com/a.jpg"}, "AIS.0501"),
    ({"image": "%%%not-base64%%%"}, "AIS.0501"),
    ({"image": "aGVsbG8=", "language": "fr"}, "AIS.0501"),
    ({"image": "aGVsbG8="}, "AIS.0502"),
    ({"image": b64(png_of(15, 200))}, "AIS.0504"),
    ({"image": b64(png_of(4097, 20))}, "AIS.0504"),
    ({"image": b64(png_of(300, 300)[:200])}, "AIS.0503"),
    ({"image": b64(jpeg_of(300, 300)[:12])}, "AIS.0503"),  # a JPEG cut inside its header: damaged
    ({"image": b64(jpeg_of(300, 300)[:2000])}, "AIS.0503"),  # a valid header, the data cut short
    ({"url": "ftp://example.com/a.jpg"}, "ModelArts.4601"),
    ({"url": "http://127.0.0.1:1/a.jpg"}, "ModelArts.4601"),
    ({"url": "http://169.254.169.254/latest/meta-data/"}, "ModelArts.4601"),
    ({"url": "http://10.0.0.7/a.jpg"}, "ModelArts.4601"),
    ({"url": "http://loupe-no-such-host.invalid/a.jpg"}, "ModelArts.4603"),
])
def test_every_bad_request_gets_its_code(stack, token, body, expected):
    r = tag(stack, token, body)
    assert r.status_code == 400 and r.json()["error_code"] == expected, r.text
    assert r.json()["error_msg"] and r.headers["x-request-id"]


def test_authentication_errors(stack, token):
    image = {"image": b64(png_of(64, 64))}
    for headers, expected in (({}, "ModelArts.4101"), ({"X-Auth-Token": "garbage"}, "ModelArts.4102"),
                              ({"X-Auth-Token": token[:-4] + "0000"}, "ModelArts.4103"),
                              ({"Authorization": "SDK-HMAC-SHA256 Access=x, SignedHeaders=host, Signature=00"},
                               "APIG.0301")):
        r = tag(stack, None, image, headers=headers)
        assert r.status_code == 400 and r.json()["error_code"] == expected, (headers, r.text)
    wrong = json.loads(json.dumps(IAM_BODY))
    wrong["auth"]["identity"]["password"]["user"]["password"] = "guess"
    r = httpx.post(stack.endpoint_url + "/v3/auth/tokens", json=wrong)
    assert r.status_code == 401 and "x-subject-token" not in r.headers


def test_oversized_body_and_unknown_api(stack, token):
    r = tag(stack, token, b'{"image": "' + b"A" * (15 * 1024 * 1024) + b'"}')
    assert r.status_code == 400 and r.json()["error_code"] == "APIG.0201"
    r = httpx.get(stack.endpoint_url + "/v1.0/image/tagging")
    assert r.status_code == 400 and r.json()["error_code"] == "APIG.0101" and r.headers["x-request-id"]


def test_rate_limit(stack, token):
    """20 requests per second per caller with a burst of 40: 150 quick requests cannot all pass."""
    from concurrent.futures import ThreadPoolExecutor

    headers = {"Content-Type": "application/json", "X-Auth-Token": token}
    time.sleep(2.5)  # a full bucket: the tests before this one spent some of this caller's burst
    with httpx.Client(base_url=stack.endpoint_url) as client, ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: client.post("/v1.0/image/tagging", content=b"{bad", headers=headers)
                              .json()["error_code"], range(150)))
    assert codes.count("AIS.0014") >= 40 and "APIG.0308" in codes, codes  # the burst passes, then the limit holds
