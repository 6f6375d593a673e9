"""TagResource, UntagResource, ListTagsForResource on project and model ARNs through boto3."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from helpers import signed_request


def code_of(excinfo) -> tuple[str, int]:
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def project_arn(lookout, project_name) -> str:
    return lookout.create_project(ProjectName=project_name)["ProjectMetadata"]["ProjectArn"]


def test_tag_untag_list_on_a_project(lookout, project_arn):
    assert lookout.list_tags_for_resource(ResourceArn=project_arn)["Tags"] == []
    lookout.tag_resource(ResourceArn=project_arn, Tags=[
        {"Key": "team", "Value": "qa"}, {"Key": "line.station", "Value": "3/B"}, {"Key": "empty", "Value": ""},
    ])
    lookout.tag_resource(ResourceArn=project_arn, Tags=[{"Key": "team", "Value": "vision"}])
    tags = {t["Key"]: t["Value"] for t in lookout.list_tags_for_resource(ResourceArn=project_arn)["Tags"]}
    assert tags == {"team": "vision", "line.station": "3/B", "empty": ""}
    lookout.untag_resource(ResourceArn=project_arn, TagKeys=["line.station", "not-there"])
    assert lookout.list_tags_for_resource(ResourceArn=project_arn)["Tags"] == [
        {"Key": "empty", "Value": ""}, {"Key": "team", "Value": "vision"},
    ]


def test_tag_limits(lookout, project_arn):
    with pytest.raises(ClientError) as excinfo:
        lookout.tag_resource(ResourceArn=project_arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(201)])
    assert code_of(excinfo) == ("ValidationException", 400)
    lookout.tag_resource(ResourceArn=project_arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(200)])
    with pytest.raises(ClientError) as excinfo:
        lookout.tag_resource(ResourceArn=project_arn, Tags=[{"Key": "one-more", "Value": "v"}])
    assert code_of(excinfo) == ("ServiceQuotaExceededException", 402)
    for bad in ({"Key": "bad;key", "Value": "v"}, {"Key": "k", "Value": "v" * 257}, {"Key": "aws:reserved", "Value": "v"}):
        with pytest.raises(ClientError) as excinfo:
            lookout.tag_resource(ResourceArn=project_arn, Tags=[bad])
        assert code_of(excinfo) == ("ValidationException", 400), bad


def test_unknown_resources(lookout, project_arn, project_name):
    missing = project_arn + "-gone"
    with pytest.raises(ClientError) as excinfo:
        lookout.list_tags_for_resource(ResourceArn=missing)
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    model = project_arn.replace(":project/", ":model/") + "/7"
    with pytest.raises(ClientError) as excinfo:
        lookout.tag_resource(ResourceArn=model, Tags=[{"Key": "a", "Value": "b"}])
    assert code_of(excinfo) == ("ResourceNotFoundException", 404)
    assert excinfo.value.response["ResourceType"] == "MODEL"
    for arn in ("arn:aws:s3:::bucket", project_arn.replace("us-east-1", "eu-west-1")):
        with pytest.raises(ClientError) as excinfo:
            lookout.list_tags_for_resource(ResourceArn=arn)
        assert code_of(excinfo) == ("ValidationException", 400)


def test_arn_arrives_percent_encoded(stack, project_arn):
    # What botocore sends on the wire: the whole ARN percent-encoded, '/' as %2F.
    raw = signed_request(stack.endpoint_url, "GET", "/2020-11-20/tags/" + quote(project_arn, safe=""))
    assert raw.status_code == 200 and raw.json() == {"Tags": []}
