"""ListDatasetEntries: the JSON Lines of a dataset, filtered and paginated."""

from __future__ import annotations

import re

from bson import ObjectId

from loupe_common import dataset_files
from loupe_common.dataset_messages import ListDatasetEntries
from loupe_common.lookout import AnomalyClass
from loupe_common.messages import Reply
from loupe_common.pagination import decode_token, encode_token

from .datasets import get_dataset


def _filters(cmd: ListDatasetEntries) -> dict:
    query: dict = {"project_name": cmd.project_name, "dataset_type": cmd.dataset_type.value}
    if cmd.labeled is True:
        query["label"] = {"$in": [0, 1]}
    elif cmd.labeled is False:
        query["label"] = None
    if cmd.anomaly_class is not None:
        wanted = 1 if cmd.anomaly_class is AnomalyClass.ANOMALY else 0
        query["label"] = wanted if cmd.labeled is not False else {"$in": []}
    created: dict = {}
    if cmd.created_after is not None:
        created["$gt"] = cmd.created_after
    if cmd.created_before is not None:
        created["$lt"] = cmd.created_before
    if created:
        query["created_at"] = created
    if cmd.source_ref_contains is not None:
        query["source_ref"] = {"$regex": re.escape(cmd.source_ref_contains)}
    return query


DETAIL_FIELDS = ("line", "source_ref", "label", "blob_key", "mask_key", "width", "height", "anomaly_classes",
                 "note", "created_at")


def _detail(prefix: str, doc: dict) -> dict:
    return {
        "source_ref": doc["source_ref"], "label": doc.get("label"), "line": doc["line"],
        "image": dataset_files.file_name(prefix, doc.get("blob_key")),
        "mask": dataset_files.file_name(prefix, doc.get("mask_key")),
        "width": doc.get("width"), "height": doc.get("height"),
        "anomaly_classes": doc.get("anomaly_classes") or [], "note": doc.get("note"),
        "created_at": doc["created_at"].isoformat() if doc.get("created_at") else None,
    }


def _scope(cmd: ListDatasetEntries) -> str:
    """Binds a NextToken to the dataset and the filters that produced it."""
    return "ListDatasetEntries|" + cmd.model_dump_json(
        include={"project_name", "dataset_type", "labeled", "anomaly_class", "created_before",
                 "created_after", "source_ref_contains"}
    )


async def list_dataset_entries(state, cmd: ListDatasetEntries) -> Reply:
    await get_dataset(state, cmd.project_name, cmd.dataset_type)
    query = _filters(cmd)
    if cmd.next_token:
        query["_id"] = {"$gt": ObjectId(decode_token(_scope(cmd), cmd.next_token)["after"])}
    fields = DETAIL_FIELDS if cmd.detail else ("line",)
    docs = (
        await state.entries.find(query, dict.fromkeys(fields, 1))
        .sort("_id", 1)
        .limit(cmd.max_results + 1)
        .to_list(None)
    )
    result: dict = {"DatasetEntries": [d["line"] for d in docs[: cmd.max_results]]}
    if cmd.detail:
        prefix = dataset_files.blob_prefix(cmd.project_name, cmd.dataset_type.value)
        result["Entries"] = [_detail(prefix, d) for d in docs[: cmd.max_results]]
    if len(docs) > cmd.max_results:
        result["NextToken"] = encode_token(_scope(cmd), {"after": str(docs[cmd.max_results - 1]["_id"])})
    return Reply.success(result)
