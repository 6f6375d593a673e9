"""Manifest lines (Lookout / Ground Truth classification format) and their import.

A line names an image by `source-ref`, labels it with `anomaly-label` 0 (normal) or 1 (anomaly)
plus `anomaly-label-metadata`, and may carry a segmentation mask in `anomaly-mask-ref`. An image
is read, checked and copied into blob storage before its entry exists; every refused line is
reported with its number and the reason.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loupe_common.blobs import BlobStore
from loupe_common.images import ImageInfo, ImageRejected, inspect_image
from loupe_common.lookout import MAX_DATASET_ENTRY_CHARS

from .sources import SourceError, SourceReader

LABEL = "anomaly-label"
LABEL_METADATA = "anomaly-label-metadata"
MASK = "anomaly-mask-ref"
CLASS_NAMES = {0: "normal", 1: "anomaly"}
CONCURRENT_READS = 8
MAX_REPORTED_FAILURES = 20


class LineError(ValueError):
    pass


@dataclass(frozen=True)
class ManifestLine:
    number: int
    source_ref: str
    label: int | None
    mask_ref: str | None
    document: dict[str, Any]

    @property
    def text(self) -> str:
        return json.dumps(self.document, separators=(",", ":"), ensure_ascii=False)


def parse_line(number: int, text: str) -> ManifestLine:
    if len(text) > MAX_DATASET_ENTRY_CHARS:
        raise LineError(f"line is {len(text)} characters; the limit is {MAX_DATASET_ENTRY_CHARS}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(doc, dict):
        raise LineError("a JSON Line must be a JSON object")
    source_ref = doc.get("source-ref")
    if not isinstance(source_ref, str) or not source_ref.strip():
        raise LineError("missing 'source-ref'")
    label = doc.get(LABEL)
    if label is not None:
        if isinstance(label, bool) or label not in (0, 1):
            raise LineError(f"'{LABEL}' must be 0 (normal) or 1 (anomaly), got {label!r}")
        meta = doc.get(LABEL_METADATA)
        if meta is not None:
            if not isinstance(meta, dict):
                raise LineError(f"'{LABEL_METADATA}' must be an object")
            class_name = meta.get("class-name")
            if class_name is not None and class_name != CLASS_NAMES[label]:
                raise LineError(
                    f"'{LABEL_METADATA}.class-name' is {class_name!r} but '{LABEL}' {label} means "
                    f"{CLASS_NAMES[label]!r}"
                )
    mask_ref = doc.get(MASK)
    if mask_ref is not None:
        if not isinstance(mask_ref, str) or not mask_ref.strip():
            raise LineError(f"'{MASK}' must be a reference string")
        if label != 1:
            raise LineError(f"'{MASK}' is only allowed on lines labelled anomalous ({LABEL} 1)")
    return ManifestLine(number, source_ref, label, mask_ref, doc)


def split_lines(data: bytes) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers. Raises LineError if the bytes are not UTF-8."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LineError(f"manifest is not UTF-8 text (byte {exc.start})") from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


@dataclass(frozen=True)
class ImportedEntry:
    """A line whose image (and mask) passed the checks and now sit in blob storage."""

    line: ManifestLine
    image: ImageInfo
    blob_key: str
    mask_key: str | None


@dataclass
class ImportReport:
    total_lines: int = 0
    entries: list[ImportedEntry] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)

    def failure_text(self) -> str:
        shown = sorted(self.failures)[:MAX_REPORTED_FAILURES]
        text = "; ".join(f"line {n}: {reason}" for n, reason in shown)
        if len(self.failures) > len(shown):
            text += f"; and {len(self.failures) - len(shown)} more failed lines"
        return text


async def read_entries(
    data: bytes, sources: SourceReader, blobs: BlobStore, blob_prefix: str
) -> ImportReport:
    """Parse every line; read, check and decode every image it references and copy it into blob
    storage under blob_prefix (content-addressed, so a replay writes the same keys)."""
    report = ImportReport()
    try:
        numbered = split_lines(data)
    except LineError as exc:
        report.failures.append((0, str(exc)))
        return report
    report.total_lines = len(numbered)
    parsed: list[ManifestLine] = []
    first_seen: dict[str, int] = {}
    for number, text in numbered:
        try:
            line = parse_line(number, text)
        except LineError as exc:
            report.failures.append((number, str(exc)))
            continue
        if line.source_ref in first_seen:
            report.failures.append(
                (number, f"duplicate source-ref {line.source_ref} (first on line {first_seen[line.source_ref]})")
            )
            continue
        first_seen[line.source_ref] = number
        parsed.append(line)

    gate = asyncio.Semaphore(CONCURRENT_READS)

    async def load(line: ManifestLine) -> ImportedEntry | tuple[int, str]:
        async with gate:
            try:
                return await _load_line(line, sources, blobs, blob_prefix)
            except (SourceError, ImageRejected, LineError) as exc:
                return (line.number, str(exc))

    for outcome in await asyncio.gather(*(load(line) for line in parsed)):
        if isinstance(outcome, ImportedEntry):
            report.entries.append(outcome)
        else:
            report.failures.append(outcome)
    return report


async def _load_line(
    line: ManifestLine, sources: SourceReader, blobs: BlobStore, blob_prefix: str
) -> ImportedEntry:
    data = await sources.read(line.source_ref)
    try:
        image = await asyncio.to_thread(inspect_image, data)
    except ImageRejected as exc:
        raise ImageRejected(exc.reason, f"{line.source_ref}: {exc}") from None
    mask = mask_bytes = None
    if line.mask_ref is not None:
        mask_bytes = await sources.read(line.mask_ref)
        try:
            mask = await asyncio.to_thread(inspect_image, mask_bytes)
        except ImageRejected as exc:
            raise ImageRejected(exc.reason, f"mask {line.mask_ref}: {exc}") from None
        if mask.format != "PNG":
            raise LineError(f"mask {line.mask_ref} must be a PNG image")
        if (mask.width, mask.height) != (image.width, image.height):
            raise LineError(
                f"mask {line.mask_ref} is {mask.width}x{mask.height} but the image is "
                f"{image.width}x{image.height}"
            )
    blob_key = f"{blob_prefix}/{image.sha256}.{image.extension}"
    await blobs.put(blob_key, data)
    mask_key = None
    if mask is not None and mask_bytes is not None:
        mask_key = f"{blob_prefix}/masks/{mask.sha256}.png"
        await blobs.put(mask_key, mask_bytes)
    return ImportedEntry(line, image, blob_key, mask_key)


def entry_document(project_name: str, dataset_type: str, item: ImportedEntry) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "project_name": project_name,
        "dataset_type": dataset_type,
        "source_ref": item.line.source_ref,
        "line": item.line.text,
        "label": item.line.label,
        "blob_key": item.blob_key,
        "mask_key": item.mask_key,
        "width": item.image.width,
        "height": item.image.height,
        "format": item.image.format,
        "sha256": item.image.sha256,
        "created_at": now,
        "updated_at": now,
    }
