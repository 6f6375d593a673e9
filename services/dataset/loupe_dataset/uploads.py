"""Images uploaded through the Loupe-native route land in the upload bucket, named by content,
so the returned s3:// source-ref can go straight into a manifest."""

from __future__ import annotations

import asyncio

from loupe_common.dataset_messages import StoreUpload
from loupe_common.errors import validation
from loupe_common.images import ImageRejected, inspect_image
from loupe_common.messages import Reply

from .projects import get_project
from .store import DatasetState


async def store_upload(state: DatasetState, cmd: StoreUpload) -> Reply:
    try:
        await get_project(state, cmd.project_name)
        data = await state.blobs.get(cmd.upload_key)
        try:
            image = await asyncio.to_thread(inspect_image, data)
        except ImageRejected as exc:
            raise validation(str(exc)) from None
        bucket = state.settings.upload_bucket
        key = f"{cmd.project_name}/{image.sha256}.{image.extension}"
        await asyncio.to_thread(state.sources.buckets.write, bucket, key, data)
    finally:
        await state.blobs.delete(cmd.upload_key)
    return Reply.success(
        {
            "source_ref": f"s3://{bucket}/{key}",
            "file_name": cmd.file_name,
            "format": image.format,
            "content_type": image.content_type,
            "width": image.width,
            "height": image.height,
            "size": image.size,
            "sha256": image.sha256,
        }
    )
