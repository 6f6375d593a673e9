"""Where a dataset's images, masks and thumbnails lie in blob storage. The dataset service writes
them (content-addressed), the gateway serves them by file name; this module is the one owner of
the naming, so both agree."""

from __future__ import annotations

import re

# "<sha256>.<png|jpg>" for an image, "masks/<sha256>.png" for a mask
FILE_NAME = re.compile(r"^(?:masks/)?[0-9a-f]{64}\.(?:png|jpg)$")


def blob_prefix(project_name: str, dataset_type: str) -> str:
    """Everything of one dataset: deleting the dataset deletes the prefix."""
    return f"datasets/{project_name}/{dataset_type}"


def image_key(prefix: str, sha256: str, extension: str) -> str:
    return f"{prefix}/{sha256}.{extension}"


def mask_key(prefix: str, sha256: str) -> str:
    return f"{prefix}/masks/{sha256}.png"


def file_name(prefix: str, key: str | None) -> str | None:
    """A blob key of the dataset as the file name the gateway's file route takes."""
    return key.removeprefix(prefix + "/") if key and key.startswith(prefix + "/") else None


def thumbnail_key(prefix: str, name: str) -> str:
    return f"{prefix}/thumbnails/{name}.jpg"
