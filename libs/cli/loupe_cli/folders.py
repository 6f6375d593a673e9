"""Scan an import folder: DIR/normal/** and DIR/anomaly/** images, labelled by their folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Label = Literal["normal", "anomaly"]
LABELS: tuple[Label, ...] = ("normal", "anomaly")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


class FolderError(ValueError):
    """DIR cannot be imported at all (a usage error, not a failed import)."""


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    label: Label


@dataclass
class ScanResult:
    images: list[LabeledImage] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)

    def count(self, label: Label) -> int:
        return sum(1 for image in self.images if image.label == label)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def scan_folder(directory: Path) -> ScanResult:
    """Normal images first, then anomalies, each in sorted relative-path order, so repeated
    imports of the same folder send the same manifest."""
    if not directory.is_dir():
        raise FolderError(f"{directory} is not a directory")
    present = [label for label in LABELS if (directory / label).is_dir()]
    if not present:
        raise FolderError(f"{directory} has neither a normal/ nor an anomaly/ folder")
    by_label: dict[str, list[Path]] = {label: [] for label in present}
    result = ScanResult()
    # One sorted walk of all of DIR: files outside normal/ and anomaly/ are counted as skipped
    # rather than silently ignored.
    for path in sorted(directory.rglob("*"), key=lambda p: p.relative_to(directory).as_posix()):
        if not path.is_file():
            continue
        parts = path.relative_to(directory).parts
        if len(parts) > 1 and parts[0] in by_label and is_image(path):
            by_label[parts[0]].append(path)
        else:
            result.skipped.append(path)
    result.images = [LabeledImage(path, label) for label in present for path in by_label[label]]
    return result
