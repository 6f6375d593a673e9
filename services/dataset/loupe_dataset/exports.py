"""What other services may learn about datasets, over Kafka (they never read these collections):
a summary of a project's datasets, and snapshots of labelled entries for training."""

from __future__ import annotations

import json

from loupe_common.dataset_messages import ExportEntries, SummarizeDatasets
from loupe_common.messages import Reply

from .datasets import get_dataset
from .projects import get_project


async def summarize_datasets(state, cmd: SummarizeDatasets) -> Reply:
    await get_project(state, cmd.project_name)
    datasets = {
        d["dataset_type"]: {"status": d["status"], "stats": d["stats"],
                            "status_message": d.get("status_message")}
        async for d in state.datasets.find({"project_name": cmd.project_name})
    }
    return Reply.success({"datasets": datasets})


# What training reads of an entry; anomaly_classes and background_colors say how to read a mask.
EXPORTED = ("source_ref", "label", "blob_key", "mask_key", "width", "height", "anomaly_classes",
            "background_colors")


async def export_entries(state, cmd: ExportEntries) -> Reply:
    await get_dataset(state, cmd.project_name, cmd.dataset_type)
    lines = []
    cursor = state.entries.find(
        {"project_name": cmd.project_name, "dataset_type": cmd.dataset_type.value, "label": {"$in": [0, 1]}},
        {k: 1 for k in EXPORTED},
    ).sort("_id", 1)
    async for entry in cursor:
        lines.append(json.dumps({k: entry.get(k) for k in EXPORTED}))
    await state.blobs.put(cmd.export_key, "\n".join(lines).encode())
    return Reply.success({"key": cmd.export_key, "count": len(lines)})
