"""Tags on projects (TagResource, UntagResource, ListTagsForResource for project ARNs)."""

from __future__ import annotations

from loupe_common.dataset_messages import ListProjectTags, TagProject, UntagProject
from loupe_common.errors import ResourceType
from loupe_common.messages import Reply
from loupe_common.tagging import tag_list, tag_removal, tag_update

from .projects import get_project
from .store import DatasetState


async def tag_project(state: DatasetState, cmd: TagProject) -> Reply:
    doc = await get_project(state, cmd.project_name)
    update = tag_update(doc.get("tags", {}), cmd.tags, arn=doc["arn"], resource_type=ResourceType.PROJECT)
    if update:
        await state.projects.update_one({"_id": cmd.project_name}, {"$set": update})
    return Reply.success({})


async def untag_project(state: DatasetState, cmd: UntagProject) -> Reply:
    await get_project(state, cmd.project_name)
    if cmd.tag_keys:
        await state.projects.update_one({"_id": cmd.project_name}, {"$unset": tag_removal(cmd.tag_keys)})
    return Reply.success({})


async def list_project_tags(state: DatasetState, cmd: ListProjectTags) -> Reply:
    doc = await get_project(state, cmd.project_name)
    return Reply.success({"Tags": tag_list(doc.get("tags", {}))})
