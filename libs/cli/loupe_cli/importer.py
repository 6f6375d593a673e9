"""The dataset import flow, free of UI: project → uploads → manifest → dataset batches → stats.

Every step is a function that returns data; progress is reported through ImportHooks, whose
defaults do nothing, so tests and scripts can call run_import() headless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .connection import Connection, Uploaded, UploadFailure, UploadSession, resolve_connection
from .folders import LabeledImage, ScanResult, scan_folder
from .manifest import MAX_BATCH_BYTES, MAX_BATCH_LINES, batches, manifest_line

DATASET_TYPES = ("train", "test")
UPLOAD_WORKERS = 4
POLL_INTERVAL_SECONDS = 0.5
WAIT_TIMEOUT_SECONDS = 3600.0
# A dataset in these states refuses UpdateDatasetEntries with a ConflictException.
BUSY_STATUSES = frozenset(
    {"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "UPDATE_FAILED_ROLLBACK_IN_PROGRESS"}
)
UPDATE_RUNNING = frozenset({"UPDATE_IN_PROGRESS", "UPDATE_FAILED_ROLLBACK_IN_PROGRESS"})
BATCH_FAILED = "UPDATE_FAILED_ROLLBACK_COMPLETE"


class ProjectNotFound(Exception):
    def __init__(self, project: str) -> None:
        super().__init__(f"project {project!r} does not exist (pass --create-project to create it)")
        self.project = project


class DatasetWaitTimeout(Exception):
    pass


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class BatchOutcome:
    index: int  # 1-based
    lines: int
    size: int  # bytes of Changes
    status: str  # final dataset status, or the error code if the call itself was refused
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "UPDATE_COMPLETE"


@dataclass
class ImportSummary:
    project: str
    dataset_type: str
    endpoint_url: str
    found_normal: int = 0
    found_anomaly: int = 0
    skipped: int = 0
    uploaded: int = 0
    failures: list[UploadFailure] = field(default_factory=list)
    duplicates: int = 0  # same image content found twice with the same label: sent once
    entries_sent: int = 0
    batches: list[BatchOutcome] = field(default_factory=list)
    batches_total: int = 0
    image_stats: dict[str, int] = field(default_factory=dict)
    project_created: bool = False
    dataset_created: bool = False
    used_dev_credentials: bool = False

    @property
    def failed_batches(self) -> list[BatchOutcome]:
        return [b for b in self.batches if not b.ok]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.failed_batches and len(self.batches) == self.batches_total

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class ImportHooks:
    """Progress callbacks for a UI; all optional."""

    def note(self, message: str) -> None: ...
    def images_found(self, scan: ScanResult) -> None: ...
    def upload_started(self, total: int) -> None: ...
    def image_uploaded(self, outcome: Uploaded | UploadFailure) -> None: ...
    def upload_finished(self) -> None: ...
    def dataset_status(self, status: str) -> None: ...
    def batch_started(self, index: int, total: int, lines: int, size: int) -> None: ...
    def batch_finished(self, outcome: BatchOutcome) -> None: ...


# --- Step 1: the project -------------------------------------------------------------------


def ensure_project(client: Any, project: str, create: bool) -> bool:
    """True if the project had to be created. Raises ProjectNotFound if missing and not create."""
    try:
        client.describe_project(ProjectName=project)
        return False
    except ClientError as exc:
        if _error_code(exc) != "ResourceNotFoundException":
            raise
    if not create:
        raise ProjectNotFound(project)
    client.create_project(ProjectName=project)
    return True


# --- Step 2: uploads ---------------------------------------------------------------------------


@dataclass
class UploadReport:
    uploaded: list[tuple[LabeledImage, Uploaded]] = field(default_factory=list)  # scan order
    failures: list[UploadFailure] = field(default_factory=list)  # scan order


def upload_images(
    session: UploadSession,
    project: str,
    images: Sequence[LabeledImage],
    workers: int = UPLOAD_WORKERS,
    on_result: Callable[[Uploaded | UploadFailure], None] | None = None,
) -> UploadReport:
    """Uploads concurrently; results come back in scan order whatever order they finished in,
    so the manifest is deterministic."""
    results: list[Uploaded | UploadFailure | None] = [None] * len(images)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(session.upload, project, image.path): i for i, image in enumerate(images)}
        for future in as_completed(futures):
            outcome = future.result()
            results[futures[future]] = outcome
            if on_result is not None:
                on_result(outcome)
    report = UploadReport()
    for image, result in zip(images, results, strict=True):
        if isinstance(result, Uploaded):
            report.uploaded.append((image, result))
        elif result is None:  # every future was waited for above
            raise RuntimeError(f"{image.path}: the upload gave no result")
        else:
            report.failures.append(result)
    return report


# --- Step 3: the manifest ----------------------------------------------------------------------


@dataclass
class Manifest:
    lines: list[str] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[UploadFailure] = field(default_factory=list)


def build_manifest(uploaded: Sequence[tuple[LabeledImage, Uploaded]], created: datetime) -> Manifest:
    """One line per distinct image. Uploads are content-addressed, so identical files share a
    source-ref; the server refuses a batch that repeats one, hence the de-duplication here."""
    manifest = Manifest()
    seen: dict[str, LabeledImage] = {}
    for image, upload in uploaded:
        first = seen.get(upload.source_ref)
        if first is None:
            seen[upload.source_ref] = image
            manifest.lines.append(manifest_line(upload.source_ref, image.label, created))
        elif first.label == image.label:
            manifest.duplicates += 1
        else:
            manifest.conflicts.append(
                UploadFailure(
                    image.path,
                    "CONFLICTING_LABEL",
                    f"same image as {first.path} (labelled {first.label}); kept that label",
                )
            )
    return manifest


# --- Step 4: the dataset -----------------------------------------------------------------------


def describe_dataset(client: Any, project: str, dataset_type: str) -> dict[str, Any] | None:
    try:
        return client.describe_dataset(ProjectName=project, DatasetType=dataset_type)["DatasetDescription"]
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def wait_for_dataset(
    client: Any,
    project: str,
    dataset_type: str,
    busy: frozenset[str] = BUSY_STATUSES,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    timeout: float = WAIT_TIMEOUT_SECONDS,
    on_status: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Polls DescribeDataset until its Status leaves `busy`; returns that description."""
    deadline = time.monotonic() + timeout
    while True:
        description = describe_dataset(client, project, dataset_type)
        if description is None:
            raise ClientError(
                {"Error": {"Code": "ResourceNotFoundException",
                           "Message": f"the {dataset_type} dataset disappeared"}},
                "DescribeDataset",
            )
        status = description.get("Status", "")
        if on_status is not None:
            on_status(status)
        if status not in busy:
            return description
        if time.monotonic() >= deadline:
            raise DatasetWaitTimeout(f"the {dataset_type} dataset is still {status} after {timeout:.0f} s")
        time.sleep(poll_interval)


def ensure_dataset(client: Any, project: str, dataset_type: str) -> bool:
    """True if the dataset had to be created (empty: no DatasetSource, completes synchronously)."""
    if describe_dataset(client, project, dataset_type) is not None:
        return False
    try:
        client.create_dataset(ProjectName=project, DatasetType=dataset_type)
    except ClientError as exc:
        # Another importer created it between our Describe and Create: that is what we wanted.
        if _error_code(exc) != "ConflictException" or describe_dataset(client, project, dataset_type) is None:
            raise
        return False
    return True


def send_batches(
    client: Any,
    project: str,
    dataset_type: str,
    payloads: Sequence[bytes],
    poll_interval: float = POLL_INTERVAL_SECONDS,
    timeout: float = WAIT_TIMEOUT_SECONDS,
    hooks: ImportHooks | None = None,
) -> list[BatchOutcome]:
    """One UpdateDatasetEntries at a time: the dataset must be idle before each (a concurrent
    update is a ConflictException). A batch that rolls back is recorded and the next one is still
    sent; a refused call stops the sequence, since the next would be refused the same way."""
    hooks = hooks or ImportHooks()
    outcomes: list[BatchOutcome] = []
    if not payloads:
        return outcomes
    on_status = hooks.dataset_status

    def wait(busy: frozenset[str]) -> dict[str, Any]:
        return wait_for_dataset(client, project, dataset_type, busy=busy, poll_interval=poll_interval,
                                timeout=timeout, on_status=on_status)

    wait(BUSY_STATUSES)
    for index, payload in enumerate(payloads, 1):
        lines = payload.count(b"\n")
        hooks.batch_started(index, len(payloads), lines, len(payload))
        try:
            client.update_dataset_entries(ProjectName=project, DatasetType=dataset_type, Changes=payload)
        except ClientError as exc:
            outcome = BatchOutcome(index, lines, len(payload), _error_code(exc) or "ClientError", str(exc))
            outcomes.append(outcome)
            hooks.batch_finished(outcome)
            break
        description = wait(UPDATE_RUNNING)
        outcome = BatchOutcome(
            index, lines, len(payload), description.get("Status", ""), description.get("StatusMessage", "")
        )
        outcomes.append(outcome)
        hooks.batch_finished(outcome)
    return outcomes


# --- The whole flow ----------------------------------------------------------------------------


def run_import(
    directory: Path,
    project: str,
    dataset_type: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    create_project: bool = False,
    connection: Connection | None = None,
    hooks: ImportHooks | None = None,
    workers: int = UPLOAD_WORKERS,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    wait_timeout: float = WAIT_TIMEOUT_SECONDS,
    max_batch_bytes: int = MAX_BATCH_BYTES,
    max_batch_lines: int = MAX_BATCH_LINES,
    now: datetime | None = None,
) -> ImportSummary:
    """Import DIR/normal and DIR/anomaly into the project's `dataset_type` dataset.

    Raises FolderError (bad DIR), ValueError (bad dataset_type), ProjectNotFound, and botocore
    errors from the control plane; per-image and per-batch problems land in the summary instead.
    """
    if dataset_type not in DATASET_TYPES:
        raise ValueError(f"dataset type must be one of {', '.join(DATASET_TYPES)}, not {dataset_type!r}")
    hooks = hooks or ImportHooks()
    scan = scan_folder(Path(directory))
    hooks.images_found(scan)
    conn = connection or resolve_connection(endpoint_url, region)
    if conn.used_dev_credentials:
        hooks.note("No AWS credentials found; using Loupe's local development keys (LOUPEDEVACCESSKEY).")
    summary = ImportSummary(
        project=project,
        dataset_type=dataset_type,
        endpoint_url=conn.endpoint_url,
        found_normal=scan.count("normal"),
        found_anomaly=scan.count("anomaly"),
        skipped=len(scan.skipped),
        used_dev_credentials=conn.used_dev_credentials,
    )
    client = conn.lookout_client()

    summary.project_created = ensure_project(client, project, create_project)

    hooks.upload_started(len(scan.images))
    try:
        with UploadSession(conn) as session:
            report = upload_images(session, project, scan.images, workers, hooks.image_uploaded)
    finally:
        hooks.upload_finished()
    summary.uploaded = len(report.uploaded)
    summary.failures.extend(report.failures)

    manifest = build_manifest(report.uploaded, now or datetime.now(UTC))
    summary.duplicates = manifest.duplicates
    summary.failures.extend(manifest.conflicts)

    summary.dataset_created = ensure_dataset(client, project, dataset_type)
    payloads = list(batches(manifest.lines, max_batch_bytes, max_batch_lines))
    summary.batches_total = len(payloads)
    summary.batches = send_batches(client, project, dataset_type, payloads, poll_interval, wait_timeout,
                                   hooks)
    summary.entries_sent = sum(b.lines for b in summary.batches)

    description = describe_dataset(client, project, dataset_type) or {}
    summary.image_stats = dict(description.get("ImageStats") or {})
    return summary
