"""CreateProject, DescribeProject, ListProjects, DeleteProject."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from loupe_common import idempotency
from loupe_common.arn import project_arn
from loupe_common.dataset_messages import CreateProject, DeleteProject, DescribeProject, ListProjects
from loupe_common.errors import ResourceType, conflict, not_found
from loupe_common.lookout import DatasetMetadata, ProjectDescription, ProjectMetadata
from loupe_common.messages import Reply
from loupe_common.pagination import decode_token, encode_token

from .store import DatasetState
from .timeutil import epoch, now


async def get_project(state: DatasetState, name: str) -> dict:
    doc = await state.projects.find_one({"_id": name})
    if doc is None:
        raise not_found(ResourceType.PROJECT, name, f"Project {name} does not exist")
    return doc


def project_metadata(doc: dict) -> ProjectMetadata:
    return ProjectMetadata(
        creation_timestamp=epoch(doc["created_at"]), project_arn=doc["arn"], project_name=doc["_id"]
    )


async def create_project(state: DatasetState, cmd: CreateProject) -> Reply:
    async def work() -> Reply:
        doc = {
            "_id": cmd.project_name,
            "arn": project_arn(state.settings, cmd.project_name),
            "created_at": now(),
            "tags": {},
        }
        try:
            await state.projects.insert_one(doc)
        except DuplicateKeyError:
            raise conflict(
                ResourceType.PROJECT, cmd.project_name, f"Project {cmd.project_name} already exists"
            ) from None
        return Reply.success({"ProjectMetadata": project_metadata(doc).wire()})

    return await idempotency.once(
        state.db, cmd, params={"ProjectName": cmd.project_name}, resource_type=ResourceType.PROJECT, work=work
    )


async def describe_project(state: DatasetState, cmd: DescribeProject) -> Reply:
    doc = await get_project(state, cmd.project_name)
    datasets = [
        DatasetMetadata(
            creation_timestamp=epoch(d["created_at"]),
            dataset_type=d["dataset_type"],
            status=d["status"],
            status_message=d.get("status_message"),
        )
        async for d in state.datasets.find({"project_name": cmd.project_name}).sort("dataset_type", 1)
    ]
    description = ProjectDescription(
        creation_timestamp=epoch(doc["created_at"]),
        datasets=datasets,
        project_arn=doc["arn"],
        project_name=doc["_id"],
    )
    return Reply.success({"ProjectDescription": description.wire()})


async def list_projects(state: DatasetState, cmd: ListProjects) -> Reply:
    query: dict = {}
    if cmd.next_token:
        query["_id"] = {"$gt": decode_token("ListProjects", cmd.next_token)["after"]}
    docs = await state.projects.find(query).sort("_id", 1).limit(cmd.max_results + 1).to_list(None)
    result: dict = {"Projects": [project_metadata(d).wire() for d in docs[: cmd.max_results]]}
    if len(docs) > cmd.max_results:
        result["NextToken"] = encode_token("ListProjects", {"after": docs[cmd.max_results - 1]["_id"]})
    return Reply.success(result)


async def delete_project(state: DatasetState, cmd: DeleteProject) -> Reply:
    async def work() -> Reply:
        doc = await get_project(state, cmd.project_name)
        if await state.datasets.find_one({"project_name": cmd.project_name}, {"_id": 1}):
            raise conflict(
                ResourceType.PROJECT,
                cmd.project_name,
                f"Project {cmd.project_name} still has datasets; delete them first",
            )
        if await state.project_models.find_one({"project_name": cmd.project_name}, {"_id": 1}):
            raise conflict(
                ResourceType.PROJECT,
                cmd.project_name,
                f"Project {cmd.project_name} still has model versions; delete them first",
            )
        await state.projects.delete_one({"_id": cmd.project_name})
        return Reply.success({"ProjectArn": doc["arn"]})

    return await idempotency.once(
        state.db, cmd, params={"ProjectName": cmd.project_name}, resource_type=ResourceType.PROJECT, work=work
    )
