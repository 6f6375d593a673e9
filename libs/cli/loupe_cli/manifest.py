"""Manifest JSON Lines (Lookout classification format) and their split into UpdateDatasetEntries
batches."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from .folders import Label

JOB_NAME = "loupe-cli-import"
LABEL_VALUES: dict[Label, int] = {"normal": 0, "anomaly": 1}
# UpdateDatasetEntries limits: Changes is at most 10 MiB; the line cap keeps each server-side
# job (which reads and checks every referenced image) reasonably short.
MAX_BATCH_BYTES = 10_485_760
MAX_BATCH_LINES = 5_000


def iso_timestamp(moment: datetime) -> str:
    """Ground Truth style: UTC with milliseconds and a Z, e.g. 2026-11-21T19:00:00.000Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def manifest_line(source_ref: str, label: Label, created: datetime) -> str:
    document = {
        "source-ref": source_ref,
        "anomaly-label": LABEL_VALUES[label],
        "anomaly-label-metadata": {
            "class-name": label,
            "confidence": 1,
            "human-annotated": "yes",
            "creation-date": iso_timestamp(created),
            "type": "groundtruth/image-classification",
            "job-name": JOB_NAME,
        },
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def batches(
    lines: Iterable[str], max_bytes: int = MAX_BATCH_BYTES, max_lines: int = MAX_BATCH_LINES
) -> Iterator[bytes]:
    """Changes payloads of newline-terminated UTF-8 lines. Greedy and order-preserving: each holds
    as many whole lines as fit both limits."""
    current: list[bytes] = []
    size = 0
    for line in lines:
        encoded = line.encode("utf-8") + b"\n"
        if len(encoded) > max_bytes:
            raise ValueError(f"a manifest line of {len(encoded)} bytes exceeds the {max_bytes}-byte "
                             "batch limit")
        if current and (size + len(encoded) > max_bytes or len(current) >= max_lines):
            yield b"".join(current)
            current, size = [], 0
        current.append(encoded)
        size += len(encoded)
    if current:
        yield b"".join(current)
