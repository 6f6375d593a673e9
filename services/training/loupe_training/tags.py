"""Tags on model ARNs. A model version exists once CreateModel made it (training issue); until
then every model ARN is answered with ResourceNotFoundException from this collection."""

from __future__ import annotations

from loupe_common.errors import ResourceType, not_found
from loupe_common.messages import Reply
from loupe_common.tagging import tag_list, tag_removal, tag_update
from loupe_common.training_messages import ListModelTags, TagModel, UntagModel

from .store import TrainingState


async def get_model(state: TrainingState, project_name: str, version: str) -> dict:
    doc = await state.models.find_one({"_id": f"{project_name}/{version}"})
    if doc is None:
        raise not_found(
            ResourceType.MODEL, f"{project_name}/{version}",
            f"Model version {version} of project {project_name} does not exist",
        )
    return doc


async def tag_model(state: TrainingState, cmd: TagModel) -> Reply:
    doc = await get_model(state, cmd.project_name, cmd.model_version)
    update = tag_update(doc.get("tags", {}), cmd.tags, arn=doc["arn"], resource_type=ResourceType.MODEL)
    if update:
        await state.models.update_one({"_id": doc["_id"]}, {"$set": update})
    return Reply.success({})


async def untag_model(state: TrainingState, cmd: UntagModel) -> Reply:
    doc = await get_model(state, cmd.project_name, cmd.model_version)
    if cmd.tag_keys:
        await state.models.update_one({"_id": doc["_id"]}, {"$unset": tag_removal(cmd.tag_keys)})
    return Reply.success({})


async def list_model_tags(state: TrainingState, cmd: ListModelTags) -> Reply:
    doc = await get_model(state, cmd.project_name, cmd.model_version)
    return Reply.success({"Tags": tag_list(doc.get("tags", {}))})
