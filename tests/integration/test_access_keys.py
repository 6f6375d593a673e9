"""Access keys with roles on the running system: keys made with `loupe key`, each role allowed
exactly its routes on every API family (boto3, A2I, Loupe-native, Huawei AK/SK, the console's
cookie), AccessDenied in each API's own format otherwise; disabling or deleting a key stops it at
once; only an admin manages keys; the secret is shown once and never listed."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest
from botocore.exceptions import ClientError

from helpers import make_client, png_bytes, signed_request

LOOKOUT = "/2020-11-20/projects"


def loupe_key(stack, monkeypatch, *args: str) -> str:
    from typer.testing import CliRunner

    from loupe_cli.main import app

    monkeypatch.setenv("LOUPE_ENDPOINT_URL", stack.endpoint_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)  # the CLI falls back to the development (admin) key
    result = CliRunner().invoke(app, ["key", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def create_key(stack, monkeypatch, role: str) -> tuple[str, str]:
    out = loupe_key(stack, monkeypatch, "create", "--role", role, "--description", f"test {role}")
    key_id = re.search(r"access key id:\s+(\S+)", out)[1]
    secret = re.search(r"secret access key:\s+(\S+)", out)[1]
    wait_until_known(stack, key_id, secret)
    return key_id, secret


def wait_until_known(stack, key_id: str, secret: str, timeout: float = 20) -> None:
    """Gateways learn keys from the key table; wait for that, not for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        r = signed_request(stack.endpoint_url, "GET", LOOKOUT, key=key_id, secret=secret)
        if "unknown access key" not in r.text:
            return
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)


def wait_until_refused(stack, key_id: str, secret: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while "unknown access key" not in signed_request(stack.endpoint_url, "GET", LOOKOUT, key=key_id,
                                                    secret=secret).text:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def denied(call) -> str:
    with pytest.raises(ClientError) as excinfo:
        call()
    error = excinfo.value.response["Error"]
    assert error["Code"] == "AccessDeniedException", excinfo.value.response
    assert excinfo.value.response["ResponseMetadata"]["RequestId"]
    return error["Message"]


@pytest.fixture(scope="module")
def project(stack, lookout) -> str:
    name = f"keys-{uuid.uuid4().hex[:8]}"
    lookout.create_project(ProjectName=name)
    return name


def test_read_only_key_reads_everything_and_changes_nothing(stack, lookout, project, monkeypatch):
    key_id, secret = create_key(stack, monkeypatch, "read-only")
    client = make_client("lookoutvision", stack.endpoint_url, key=key_id, secret=secret)
    assert project in [p["ProjectName"] for p in client.list_projects()["Projects"]]
    assert client.describe_project(ProjectName=project)["ProjectDescription"]["ProjectName"] == project
    message = denied(lambda: client.create_project(ProjectName=f"no-{uuid.uuid4().hex[:6]}"))
    assert f"User: {key_id} (role read-only) is not authorized to perform: lookoutvision:CreateProject" in message
    denied(lambda: client.delete_project(ProjectName=project))
    denied(lambda: client.detect_anomalies(ProjectName=project, ModelVersion="1", Body=png_bytes(),
                                           ContentType="image/png"))
    a2i = make_client("sagemaker-a2i-runtime", stack.endpoint_url, key=key_id, secret=secret)
    with pytest.raises(ClientError) as excinfo:  # allowed to read: the flow definition simply does not exist
        a2i.list_human_loops(FlowDefinitionArn="arn:aws:sagemaker:us-east-1:123456789012:flow-definition/none")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # Native routes: AILabTools envelope with its own code; keys are for admins only.
    r = signed_request(stack.endpoint_url, "GET", "/loupe/v1/access-keys", key=key_id, secret=secret)
    assert r.status_code == 403 and r.json()["error_detail"]["code"] == "AI_SERVICE_UNAUTHORIZED", r.text
    assert r.json()["request_id"] and "not authorized" in r.json()["error_detail"]["message"]
    upload = signed_request(stack.endpoint_url, "POST", f"/loupe/v1/projects/{project}/images",
                            body=png_bytes(), headers={"Content-Type": "image/png"}, key=key_id, secret=secret)
    assert upload.status_code == 403, upload.text
    assert project in [p["ProjectName"] for p in lookout.list_projects()["Projects"]]  # nothing was deleted


def test_detect_key_only_detects_and_tags(stack, project, monkeypatch):
    key_id, secret = create_key(stack, monkeypatch, "detect")
    client = make_client("lookoutvision", stack.endpoint_url, key=key_id, secret=secret)
    with pytest.raises(ClientError) as excinfo:  # allowed: the model simply does not exist
        client.detect_anomalies(ProjectName=project, ModelVersion="1", Body=png_bytes(), ContentType="image/png")
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    denied(lambda: client.list_projects())
    denied(lambda: client.create_project(ProjectName=f"no-{uuid.uuid4().hex[:6]}"))
    # Huawei AK/SK with the same key: tagging is allowed (here refused only for its empty body).
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkimage.v2 import ImageClient, ImageTaggingReq, RunImageTaggingRequest

    sdk = ImageClient.new_builder().with_credentials(BasicCredentials(key_id, secret, "loupe-project")) \
        .with_endpoint(stack.endpoint_url).build()
    with pytest.raises(ClientRequestException) as huawei:
        sdk.run_image_tagging(RunImageTaggingRequest(body=ImageTaggingReq(url="")))
    assert huawei.value.error_code != "ModelArts.4203", huawei.value.error_msg


def test_roles_on_huawei_routes_and_reviewer_admin(stack, project, monkeypatch):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkimage.v2 import ImageClient, ImageTaggingReq, RunImageTaggingRequest

    key_id, secret = create_key(stack, monkeypatch, "reviewer-admin")
    sdk = ImageClient.new_builder().with_credentials(BasicCredentials(key_id, secret, "loupe-project")) \
        .with_endpoint(stack.endpoint_url).build()
    with pytest.raises(ClientRequestException) as huawei:
        sdk.run_image_tagging(RunImageTaggingRequest(body=ImageTaggingReq(url="https://example.com/a.jpg")))
    assert huawei.value.status_code == 400 and huawei.value.error_code == "ModelArts.4203"
    flow = f"keys-{uuid.uuid4().hex[:8]}"
    created = signed_request(stack.endpoint_url, "POST", "/loupe/v1/flow-definitions", key=key_id, secret=secret,
                             body=json.dumps({"FlowDefinitionName": flow, "HumanLoopConfig": {
                                 "TaskTitle": "t", "TaskDescription": "d"}}).encode(),
                             headers={"Content-Type": "application/json"})
    assert created.status_code == 200, created.text
    assert signed_request(stack.endpoint_url, "DELETE", f"/loupe/v1/flow-definitions/{flow}",
                          key=key_id, secret=secret).status_code == 200
    client = make_client("lookoutvision", stack.endpoint_url, key=key_id, secret=secret)
    denied(lambda: client.list_projects())


def test_disabled_and_deleted_keys_stop_at_once_and_secrets_are_never_listed(stack, monkeypatch):
    key_id, secret = create_key(stack, monkeypatch, "admin")
    client = make_client("lookoutvision", stack.endpoint_url, key=key_id, secret=secret)
    client.list_projects()
    listed = loupe_key(stack, monkeypatch, "list")
    assert key_id in listed and secret not in listed and "admin" in listed
    loupe_key(stack, monkeypatch, "disable", key_id)
    wait_until_refused(stack, key_id, secret)
    loupe_key(stack, monkeypatch, "enable", key_id)
    wait_until_known(stack, key_id, secret)
    # An admin key made by the CLI manages keys too; then it is deleted and refused.
    other = signed_request(stack.endpoint_url, "GET", "/loupe/v1/access-keys", key=key_id, secret=secret)
    assert other.status_code == 200 and all("secret_access_key" not in k for k in other.json()["data"]["access_keys"])
    loupe_key(stack, monkeypatch, "delete", key_id)
    wait_until_refused(stack, key_id, secret)


def test_the_configured_key_cannot_be_disabled_and_bad_input_is_refused(stack):
    from helpers import DEV_KEY

    r = signed_request(stack.endpoint_url, "PATCH", f"/loupe/v1/access-keys/{DEV_KEY}",
                       body=b'{"status": "Inactive"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "settings" in r.json()["error_detail"]["message"], r.text
    bad_role = signed_request(stack.endpoint_url, "POST", "/loupe/v1/access-keys", body=b'{"role": "root"}',
                              headers={"Content-Type": "application/json"})
    assert bad_role.status_code == 400 and bad_role.json()["request_id"], bad_role.text
    missing = signed_request(stack.endpoint_url, "DELETE", "/loupe/v1/access-keys/LKIANOSUCHKEY0000000")
    assert missing.status_code == 404, missing.text


def test_console_session_acts_with_its_keys_role(stack, monkeypatch):
    key_id, secret = create_key(stack, monkeypatch, "read-only")
    with httpx.Client(base_url=stack.endpoint_url, timeout=30) as browser:
        signed_in = browser.post("/loupe/console/api/session", json={"accessKeyId": key_id, "secretAccessKey": secret})
        assert signed_in.status_code == 200 and signed_in.json()["data"]["role"] == "read-only", signed_in.text
        csrf = signed_in.json()["data"]["csrfToken"]
        assert browser.get(LOOKOUT).status_code == 200
        created = browser.post(LOOKOUT, json={"ProjectName": f"no-{uuid.uuid4().hex[:6]}"},
                               headers={"X-Loupe-Csrf": csrf})
        assert created.status_code == 403 and created.json()["__type"] == "AccessDeniedException", created.text


def test_a_replayed_signed_change_is_refused_and_a_fresh_one_is_not(stack, lookout):
    """The finding: a signed DeleteProject replayed 5 s later deleted the re-created project."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    from helpers import DEV_KEY, DEV_SECRET, REGION

    name = f"replay-{uuid.uuid4().hex[:8]}"
    lookout.create_project(ProjectName=name)
    request = botocore.awsrequest.AWSRequest(method="DELETE", url=f"{stack.endpoint_url}{LOOKOUT}/{name}")
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(DEV_KEY, DEV_SECRET), "lookoutvision",
                            REGION).add_auth(request)
    captured = dict(request.headers.items())
    first = httpx.delete(f"{stack.endpoint_url}{LOOKOUT}/{name}", headers=captured)
    assert first.status_code == 200, first.text
    lookout.create_project(ProjectName=name)
    replayed = httpx.delete(f"{stack.endpoint_url}{LOOKOUT}/{name}", headers=captured)
    assert replayed.status_code == 403 and "replay" in replayed.json()["message"], replayed.text
    assert replayed.headers["x-amzn-requestid"]
    assert lookout.describe_project(ProjectName=name)["ProjectDescription"]["ProjectName"] == name
    # With a client token (as boto3 and the CLI send), the replay gets the first answer, not a new delete.
    request = botocore.awsrequest.AWSRequest(method="DELETE", url=f"{stack.endpoint_url}{LOOKOUT}/{name}",
                                             headers={"X-Amzn-Client-Token": uuid.uuid4().hex})
    botocore.auth.SigV4Auth(botocore.credentials.Credentials(DEV_KEY, DEV_SECRET), "lookoutvision",
                            REGION).add_auth(request)
    tokened = dict(request.headers.items())
    assert httpx.delete(f"{stack.endpoint_url}{LOOKOUT}/{name}", headers=tokened).status_code == 200
    lookout.create_project(ProjectName=name)
    again = httpx.delete(f"{stack.endpoint_url}{LOOKOUT}/{name}", headers=tokened)
    assert again.status_code == 200, again.text
    assert lookout.describe_project(ProjectName=name)["ProjectDescription"]["ProjectName"] == name
    lookout.delete_project(ProjectName=name)  # a fresh signature: taken
