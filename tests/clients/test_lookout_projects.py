"""Projects, pagination, idempotency, authentication — unmodified boto3 1.40.60 against the real stack."""

from __future__ import annotations

import uuid

import botocore
import pytest
from botocore.exceptions import ClientError

from helpers import make_client, signed_request


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, dict]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response


def test_pinned_botocore_still_has_lookoutvision():
    assert botocore.__version__ == "1.40.60"


def test_project_lifecycle(lookout, project_name):
    created = lookout.create_project(ProjectName=project_name)
    meta = created["ProjectMetadata"]
    assert meta["ProjectName"] == project_name
    assert meta["ProjectArn"] == f"arn:aws:lookoutvision:us-east-1:123456789012:project/{project_name}"
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert created["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    described = lookout.describe_project(ProjectName=project_name)["ProjectDescription"]
    assert described["ProjectArn"] == meta["ProjectArn"]
    assert described["Datasets"] == []
    assert described["CreationTimestamp"] == meta["CreationTimestamp"]

    names = [p["ProjectName"] for page in lookout.get_paginator("list_projects").paginate() for p in page["Projects"]]
    assert project_name in names

    deleted = lookout.delete_project(ProjectName=project_name)
    assert deleted["ProjectArn"] == meta["ProjectArn"]
    with pytest.raises(ClientError) as excinfo:
        lookout.describe_project(ProjectName=project_name)
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert project_name in response["Error"]["Message"]


def test_duplicate_project_is_a_conflict(lookout, project_name):
    lookout.create_project(ProjectName=project_name)
    with pytest.raises(ClientError) as excinfo:
        lookout.create_project(ProjectName=project_name)
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ConflictException", 409)
    assert response["ResourceId"] == project_name
    assert response["ResourceType"] == "PROJECT"


@pytest.mark.parametrize(
    "name, constraint",
    [
        ("bad name", "regular expression pattern"),
        ("-starts-with-dash", "regular expression pattern"),
        ("x" * 256, "length less than or equal to 255"),
    ],
)
def test_project_name_constraints(lookout, name, constraint):
    with pytest.raises(ClientError) as excinfo:
        lookout.create_project(ProjectName=name)
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "projectName" in response["Error"]["Message"]
    assert constraint in response["Error"]["Message"]


def test_path_parameters_are_validated_too(lookout):
    # botocore does not check patterns client-side: the server must.
    with pytest.raises(ClientError) as excinfo:
        lookout.describe_project(ProjectName="has.dot")
    assert error_of(excinfo)[:2] == ("ValidationException", 400)


def test_list_projects_pages_through_everything(lookout):
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    names = sorted(f"{prefix}-{i}" for i in range(7))
    for name in names:
        lookout.create_project(ProjectName=name)
    seen, pages = [], 0
    token = None
    while True:
        kwargs = {"MaxResults": 2} | ({"NextToken": token} if token else {})
        page = lookout.list_projects(**kwargs)
        pages += 1
        assert len(page["Projects"]) <= 2
        seen += [p["ProjectName"] for p in page["Projects"]]
        token = page.get("NextToken")
        if not token:
            break
    assert [n for n in seen if n.startswith(prefix)] == names
    assert len(seen) == len(set(seen))
    assert pages >= 4
    paginated = [
        p["ProjectName"]
        for page in lookout.get_paginator("list_projects").paginate(PaginationConfig={"PageSize": 3})
        for p in page["Projects"]
    ]
    assert paginated == seen


def test_list_projects_max_results_range(lookout, stack):
    with pytest.raises(ClientError) as excinfo:
        lookout.list_projects(MaxResults=101)
    code, status, response = error_of(excinfo)
    assert (code, status) == ("ValidationException", 400)
    assert "maxResults" in response["Error"]["Message"]
    # botocore refuses 0 and non-numbers itself; other clients do not.
    for value in ("0", "ten"):
        raw = signed_request(stack.endpoint_url, "GET", f"/2020-11-20/projects?maxResults={value}")
        assert raw.status_code == 400
        assert raw.headers["x-amzn-errortype"] == "ValidationException"
        assert "maxResults" in raw.json()["message"]


def test_forged_pagination_token_is_rejected(lookout):
    with pytest.raises(ClientError) as excinfo:
        lookout.list_projects(NextToken="bm90LWEtdG9rZW4=")
    code, _, response = error_of(excinfo)
    assert code == "ValidationException"
    assert "pagination token" in response["Error"]["Message"].lower()


def test_client_token_makes_create_idempotent(lookout, project_name):
    first = lookout.create_project(ProjectName=project_name, ClientToken="retry-1")
    again = lookout.create_project(ProjectName=project_name, ClientToken="retry-1")
    assert again["ProjectMetadata"] == first["ProjectMetadata"]
    with pytest.raises(ClientError) as excinfo:
        lookout.create_project(ProjectName=project_name + "-other", ClientToken="retry-1")
    assert error_of(excinfo)[:2] == ("ConflictException", 409)
    with pytest.raises(ClientError) as excinfo:
        lookout.describe_project(ProjectName=project_name + "-other")
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


def test_client_token_pattern_is_enforced(lookout, project_name):
    with pytest.raises(ClientError) as excinfo:
        lookout.create_project(ProjectName=project_name, ClientToken="not valid!")
    code, _, response = error_of(excinfo)
    assert code == "ValidationException"
    assert "clientToken" in response["Error"]["Message"]


def test_idempotent_delete_returns_the_first_answer(lookout, project_name):
    lookout.create_project(ProjectName=project_name)
    first = lookout.delete_project(ProjectName=project_name, ClientToken="del-1")
    again = lookout.delete_project(ProjectName=project_name, ClientToken="del-1")
    assert again["ProjectArn"] == first["ProjectArn"]
    with pytest.raises(ClientError) as excinfo:
        lookout.delete_project(ProjectName=project_name, ClientToken="del-2")
    assert error_of(excinfo)[0] == "ResourceNotFoundException"


def test_wrong_secret_is_access_denied(stack):
    client = make_client("lookoutvision", stack.endpoint_url, secret="wrong-secret")
    with pytest.raises(ClientError) as excinfo:
        client.list_projects()
    assert error_of(excinfo)[:2] == ("AccessDeniedException", 403)


def test_unknown_access_key_is_access_denied(stack):
    client = make_client("lookoutvision", stack.endpoint_url, key="AKIDUNKNOWN")
    with pytest.raises(ClientError) as excinfo:
        client.list_projects()
    code, status, response = error_of(excinfo)
    assert (code, status) == ("AccessDeniedException", 403)
    assert "access key" in response["Error"]["Message"]


def test_unsigned_request_is_access_denied_but_health_is_open(stack):
    import httpx

    response = httpx.get(stack.endpoint_url + "/2020-11-20/projects")
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"] == "AccessDeniedException"
    assert response.headers["x-amzn-requestid"]
    assert httpx.get(stack.endpoint_url + "/health").status_code == 200


def test_a_client_of_an_accepted_region_changes_only_the_endpoint(stack, lookout, project_name):
    """LOUPE_SIGNING_REGIONS (the test stack accepts ca-central-1): a client keeps its region; the
    ARNs Loupe issues say LOUPE_REGION, and the client's own region's ARNs name the same resources."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "lookoutvision", endpoint_url=stack.endpoint_url, region_name="ca-central-1",
        aws_access_key_id="LOUPEDEVACCESSKEY", aws_secret_access_key="loupe-dev-secret-key",
        config=Config(retries={"total_max_attempts": 1}),
    )
    arn = client.create_project(ProjectName=project_name)["ProjectMetadata"]["ProjectArn"]
    assert arn.startswith("arn:aws:lookoutvision:us-east-1:")
    client.tag_resource(ResourceArn=arn.replace("us-east-1", "ca-central-1"), Tags=[{"Key": "k", "Value": "v"}])
    assert lookout.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
    assert project_name in [p["ProjectName"] for p in client.list_projects()["Projects"]]


def test_wrong_region_scope_is_access_denied(stack):
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "lookoutvision", endpoint_url=stack.endpoint_url, region_name="eu-west-1",
        aws_access_key_id="LOUPEDEVACCESSKEY", aws_secret_access_key="loupe-dev-secret-key",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as excinfo:
        client.list_projects()
    code, _, response = error_of(excinfo)
    assert code == "AccessDeniedException"
    assert "region" in response["Error"]["Message"]
