"""Manifest lines (Lookout / Ground Truth format) and their import.

A line names an image by `source-ref`. Its label is a Ground Truth classification attribute: any
key K whose `K-metadata` has `"type": "groundtruth/image-classification"` (`anomaly-label`,
`auto-label`, ...). As in Lookout, K's value must be there but is not used: the metadata's
`class-name` decides, `normal` or `anomaly`. A line may carry a segmentation mask: a key M whose
`M-metadata` has `"type": "groundtruth/semantic-segmentation"` and an `internal-color-map`
naming each anomaly class and its colour (the background's entry is optional). Loupe's own short
form, `anomaly-label` 0/1 without metadata and a plain `anomaly-mask-ref` (white on black), is
read too.

What cannot be classified comes in unlabelled, with the reason (reported in the dataset's status
message); a line is refused only when it is unusable: not JSON, no `source-ref`, an image or mask
that cannot be read, a mask whose colours its colour map does not name. An image is read, checked
and copied into blob storage before its entry exists; every refused line is reported with its
number and the reason.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from PIL import Image

from loupe_common import dataset_files, json_bodies
from loupe_common.blobs import BlobStore
from loupe_common.images import ImageInfo, ImageRejected, decode_image, inspect_image
from loupe_common.lookout import MAX_DATASET_ENTRY_CHARS

from .sources import SourceError, SourceReader

CLASSIFICATION = "groundtruth/image-classification"
SEGMENTATION = "groundtruth/semantic-segmentation"
LABEL = "anomaly-label"  # the attribute names Loupe writes (and reads without metadata)
MASK = "anomaly-mask-ref"
LABELS = {"normal": 0, "anomaly": 1}
BACKGROUND = "background"
CONCURRENT_READS = 8
MAX_REPORTED_FAILURES = 20
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


class LineError(ValueError):
    pass


@dataclass(frozen=True)
class AnomalyClass:
    name: str
    color: str  # "#rrggbb" as the colour map writes it


@dataclass(frozen=True)
class ManifestLine:
    number: int
    source_ref: str
    label: int | None
    mask_ref: str | None
    document: dict[str, Any]
    anomaly_classes: tuple[AnomalyClass, ...] = ()  # from the mask's colour map; () = a white-on-black mask
    background_colors: tuple[str, ...] = ()  # the colour map's background entry, if it has one
    note: str | None = None  # why the line came in unlabelled, or what of it was not used

    @property
    def text(self) -> str:
        return json.dumps(self.document, separators=(",", ":"), ensure_ascii=False)


def _attribute(doc: dict[str, Any], kind: str) -> str | None:
    """The first key K whose K-metadata is of this Ground Truth type."""
    for key, meta in doc.items():
        if key.endswith("-metadata") and isinstance(meta, dict) and meta.get("type") == kind:
            return key.removesuffix("-metadata")
    return None


def _label(doc: dict[str, Any]) -> tuple[int | None, str | None]:
    """(label, why it is None): the class-name of the classification attribute decides."""
    key = _attribute(doc, CLASSIFICATION)
    if (key is None and isinstance(doc.get(f"{LABEL}-metadata"), dict)
            and "type" not in doc[f"{LABEL}-metadata"]):
        key = LABEL  # metadata without its type: still Lookout's attribute
    if key is not None:
        if doc.get(key) is None:
            return None, f"'{key}' has metadata but no value"
        class_name = doc[f"{key}-metadata"].get("class-name")
        if isinstance(class_name, str) and class_name.strip().lower() in LABELS:
            return LABELS[class_name.strip().lower()], None
        return None, f"'{key}-metadata' class-name {class_name!r} is neither 'normal' nor 'anomaly'"
    value = doc.get(LABEL)
    if value is None:
        return None, None  # an unlabelled line
    if not isinstance(value, bool) and value in (0, 1, "0", "1"):
        return int(value), None
    return None, f"'{LABEL}' without metadata must be 0 (normal) or 1 (anomaly), got {value!r}"


def _color_map(key: str, meta: dict[str, Any]) -> tuple[tuple[AnomalyClass, ...], tuple[str, ...]]:
    """The anomaly classes and background colours of a segmentation attribute's colour map."""
    colors = meta.get("internal-color-map")
    if not isinstance(colors, dict) or not colors:
        raise LineError(f"'{key}-metadata' has no internal-color-map")
    classes: list[AnomalyClass] = []
    background: list[str] = []
    for index, entry in colors.items():
        name = entry.get("class-name") if isinstance(entry, dict) else None
        color = entry.get("hex-color") if isinstance(entry, dict) else None
        if (not isinstance(name, str) or not name.strip()
                or not isinstance(color, str) or not _HEX.match(color)):
            raise LineError(f"'{key}-metadata' internal-color-map entry {index!r} needs a class-name and a "
                            f"hex-color like #23a436")
        if name.strip().lower() == BACKGROUND:
            background.append(color.lower())
        elif any(c.color.lower() == color.lower() for c in classes):
            raise LineError(f"'{key}-metadata' internal-color-map gives {color} to two classes")
        else:
            classes.append(AnomalyClass(name.strip(), color))
    if not classes:
        raise LineError(f"'{key}-metadata' internal-color-map names no anomaly class")
    return tuple(classes), tuple(background)


def parse_line(number: int, text: str) -> ManifestLine:
    if len(text) > MAX_DATASET_ENTRY_CHARS:
        raise LineError(f"line is {len(text)} characters; the limit is {MAX_DATASET_ENTRY_CHARS}")
    try:
        doc = json_bodies.loads(text)
    except json_bodies.JsonRefused as refused:
        raise LineError(str(refused)) from None
    if not isinstance(doc, dict):
        raise LineError("a JSON Line must be a JSON object")
    source_ref = doc.get("source-ref")
    if not isinstance(source_ref, str) or not source_ref.strip():
        raise LineError("missing 'source-ref'")
    label, note = _label(doc)
    mask_key = _attribute(doc, SEGMENTATION)
    classes: tuple[AnomalyClass, ...] = ()
    background: tuple[str, ...] = ()
    if mask_key is not None:
        classes, background = _color_map(mask_key, doc[f"{mask_key}-metadata"])
    else:
        mask_key = MASK
    mask_ref = doc.get(mask_key)
    if mask_ref is not None:
        if not isinstance(mask_ref, str) or not mask_ref.strip():
            raise LineError(f"'{mask_key}' must be a reference string")
        if label != 1:
            note = note or f"'{mask_key}' not used: the image is not labelled anomalous"
            mask_ref, classes, background = None, (), ()
    return ManifestLine(number, source_ref, label, mask_ref, doc, classes, background, note)


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
        return _listed(self.failures, "more failed lines")

    @property
    def notes(self) -> list[tuple[int, str]]:
        """Imported lines that came in unlabelled for a reason, or with a part not used."""
        return [(item.line.number, item.line.note) for item in self.entries if item.line.note]

    def note_text(self) -> str:
        return _listed(self.notes, "more")


def _listed(numbered: list[tuple[int, str]], more: str) -> str:
    shown = sorted(numbered)[:MAX_REPORTED_FAILURES]
    text = "; ".join(f"line {n}: {reason}" for n, reason in shown)
    if len(numbered) > len(shown):
        text += f"; and {len(numbered) - len(shown)} {more}"
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
                (number,
                 f"duplicate source-ref {line.source_ref} (first on line {first_seen[line.source_ref]})")
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
            mask, decoded = await asyncio.to_thread(decode_image, mask_bytes)
        except ImageRejected as exc:
            raise ImageRejected(exc.reason, f"mask {line.mask_ref}: {exc}") from None
        try:
            if mask.format != "PNG":
                raise LineError(f"mask {line.mask_ref} must be a PNG image")
            if (mask.width, mask.height) != (image.width, image.height):
                raise LineError(
                    f"mask {line.mask_ref} is {mask.width}x{mask.height} but the image is "
                    f"{image.width}x{image.height}"
                )
            if line.anomaly_classes:
                await asyncio.to_thread(check_mask_colors, line, decoded)
        finally:
            decoded.close()
    blob_key = dataset_files.image_key(blob_prefix, image.sha256, image.extension)
    await blobs.put(blob_key, data)
    mask_key = None
    if mask is not None and mask_bytes is not None:
        mask_key = dataset_files.mask_key(blob_prefix, mask.sha256)
        await blobs.put(mask_key, mask_bytes)
    return ImportedEntry(line, image, blob_key, mask_key)


def mask_colors(mask: Image.Image) -> set[str]:
    """The colours a decoded mask's pixels use, as "#rrggbb"."""
    rgb = np.asarray(mask.convert("RGB"), dtype=np.uint32)
    packed = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    return {f"#{int(v):06x}" for v in packed}


def check_mask_colors(line: ManifestLine, mask: Image.Image) -> None:
    """Every colour of the mask is an anomaly class or background (the map's own background
    colour, or black or white when no class uses them)."""
    named = {c.color.lower() for c in line.anomaly_classes}
    background = set(line.background_colors) | ({"#000000", "#ffffff"} - named)
    unknown = sorted(mask_colors(mask) - named - background)
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise LineError(f"mask {line.mask_ref} has colours its internal-color-map does not name: {shown}")


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
        "anomaly_classes": [{"name": c.name, "color": c.color} for c in item.line.anomaly_classes]
        if item.mask_key else [],
        "background_colors": list(item.line.background_colors) if item.mask_key else [],
        "note": item.line.note,
        "width": item.image.width,
        "height": item.image.height,
        "format": item.image.format,
        "sha256": item.image.sha256,
        "created_at": now,
        "updated_at": now,
    }
