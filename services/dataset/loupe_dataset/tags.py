"""Tags on projects (TagResource, UntagResource, ListTagsForResource for project ARNs)."""

from __future__ import annotations

from loupe_common.dataset_messages import ListProjectTags, TagProject, UntagProject
from loupe_common.errors import ErrorCode, LoupeError, ResourceType, validation
from loupe_common.lookout import MAX_TAGS
from loupe_common.messages import Reply

from .projects import get_project
from .store import DatasetState


async def tag_project(state: DatasetState, cmd: TagProject) -> Reply:
    if any(tag.key.lower().startswith("aws:") for tag in cmd.tags):
        raise validation("Tag keys starting with 'aws:' are reserved")
    doc = await get_project(state, cmd.project_name)
    merged = {**doc.get("tags", {}), **{_field(tag.key): tag.value for tag in cmd.tags}}
    if len(merged) > MAX_TAGS:
        raise LoupeError(
            ErrorCode.QUOTA_EXCEEDED,
            f"A resource can have at most {MAX_TAGS} tags; this request would leave {len(merged)}",
            resource_id=doc["arn"],
            resource_type=ResourceType.PROJECT,
            quota_code="L-TAGS",
        )
    await state.projects.update_one(
        {"_id": cmd.project_name}, {"$set": {f"tags.{_field(t.key)}": t.value for t in cmd.tags}}
    )
    return Reply.success({})


async def untag_project(state: DatasetState, cmd: UntagProject) -> Reply:
    await get_project(state, cmd.project_name)
    if cmd.tag_keys:
        await state.projects.update_one(
            {"_id": cmd.project_name}, {"$unset": {f"tags.{_field(k)}": "" for k in cmd.tag_keys}}
        )
    return Reply.success({})


async def list_project_tags(state: DatasetState, cmd: ListProjectTags) -> Reply:
    doc = await get_project(state, cmd.project_name)
    tags = [{"Key": _key(k), "Value": v} for k, v in sorted(doc.get("tags", {}).items())]
    return Reply.success({"Tags": tags})


# Tag keys may contain '.' (and start with '$'-free text), which MongoDB field paths cannot:
# store them escaped.
def _field(key: str) -> str:
    return key.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def _key(field: str) -> str:
    return field.replace("%2E", ".").replace("%24", "$").replace("%25", "%")
