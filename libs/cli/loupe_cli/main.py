"""The `loupe` command line: typer for arguments, rich for progress and the summary. All the work
happens in importer.py; this module only renders it."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.status import Status
from rich.table import Table
from rich.text import Text

from .connection import Uploaded, UploadFailure
from .folders import FolderError, ScanResult
from .importer import (BatchOutcome, DatasetWaitTimeout, ImportHooks, ImportSummary, ProjectNotFound,
                       run_import)

if TYPE_CHECKING:  # `loupe ingest` imports Kafka and loupe_common only when it runs
    from .ingest import FolderScan, IngestReport, NotSent, Outcome

MAX_LISTED_FAILURES = 20

app = typer.Typer(help="Loupe, a self-hosted Amazon Lookout for Vision.", no_args_is_help=True)
dataset_app = typer.Typer(help="Work with project datasets.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")



def progress_bar(console: Console) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)

class DatasetType(str, Enum):
    train = "train"
    test = "test"


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- img/s" if speed is None else f"{speed:.1f} img/s", style="progress.data.speed")


class RichHooks(ImportHooks):
    """Renders importer progress. Called from the main thread only (uploads report back through
    as_completed), so rich needs no locking here."""

    def __init__(self, console: Console, directory: Path) -> None:
        self.console = console
        self.directory = directory
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.status: Status | None = None
        self.stage = "Waiting for the dataset:"

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]note:[/] {message}")

    def images_found(self, scan: ScanResult) -> None:
        n = len(scan.skipped)
        skipped = f", skipping {n} other file{'' if n == 1 else 's'}" if n else ""
        self.console.print(
            f"Found {scan.count('normal')} normal and {scan.count('anomaly')} anomaly images{skipped}."
        )

    def upload_started(self, total: int) -> None:
        self.progress = progress_bar(self.console)
        self.progress.start()
        self.task = self.progress.add_task("Uploading", total=total)

    def image_uploaded(self, outcome: Uploaded | UploadFailure) -> None:
        if self.progress is None or self.task is None:
            raise RuntimeError("image_uploaded before upload_started")
        if isinstance(outcome, UploadFailure):
            self.progress.console.print(
                f"[red]✗[/] {self._name(outcome.path)}: {outcome.code} {outcome.message}")
        self.progress.advance(self.task)

    def upload_finished(self) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _show(self, text: str) -> None:
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def dataset_status(self, status: str) -> None:
        self._show(f"{self.stage} dataset is {status}")

    def batch_started(self, index: int, total: int, lines: int, size: int) -> None:
        self.stage = f"Batch {index}/{total} ({lines} entries, {size:,} bytes):"
        self._show(f"{self.stage} sending")

    def batch_finished(self, outcome: BatchOutcome) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
        mark = "[green]✓[/]" if outcome.ok else "[red]✗[/]"
        detail = "" if outcome.ok else f": {outcome.message}"
        self.console.print(f"{mark} batch {outcome.index}: {outcome.lines} entries, {outcome.status}{detail}")

    def _name(self, path: Path) -> str:
        try:
            return path.relative_to(self.directory).as_posix()
        except ValueError:
            return str(path)


def render_summary(console: Console, summary: ImportSummary, directory: Path) -> None:
    table = Table(title=f"Import into {summary.project} / {summary.dataset_type}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("Images found", f"{summary.found_normal + summary.found_anomaly} "
                  f"(normal {summary.found_normal}, anomaly {summary.found_anomaly})")
    if summary.skipped:
        table.add_row("Skipped (not images)", str(summary.skipped))
    table.add_row("Uploaded", str(summary.uploaded))
    table.add_row("Failed", Text(str(len(summary.failures)), style="red" if summary.failures else ""))
    if summary.duplicates:
        table.add_row("Duplicate images (sent once)", str(summary.duplicates))
    table.add_row("Entries sent", str(summary.entries_sent))
    ok_batches = sum(batch.ok for batch in summary.batches)
    table.add_row("Batches completed", f"{ok_batches}/{summary.batches_total}")
    stats = summary.image_stats
    for key in ("Total", "Labeled", "Normal", "Anomaly"):
        table.add_row(f"Dataset images: {key}", str(stats.get(key, "-")))
    console.print(table)

    if summary.failures:
        failures = Table(title=f"Failed images (first {MAX_LISTED_FAILURES})" if len(summary.failures) >
                         MAX_LISTED_FAILURES else "Failed images")
        failures.add_column("File")
        failures.add_column("Code", style="red")
        failures.add_column("Message")
        for failure in summary.failures[:MAX_LISTED_FAILURES]:
            try:
                name = failure.path.relative_to(directory).as_posix()
            except ValueError:
                name = str(failure.path)
            failures.add_row(name, failure.code, failure.message)
        console.print(failures)
        if len(summary.failures) > MAX_LISTED_FAILURES:
            console.print(f"... and {len(summary.failures) - MAX_LISTED_FAILURES} more")
    for batch in summary.failed_batches:
        console.print(f"[red]Batch {batch.index} failed ({batch.status}):[/] {batch.message}")
    if len(summary.batches) < summary.batches_total:
        console.print(f"[red]{summary.batches_total - len(summary.batches)} batches were not sent.[/]")


@dataset_app.command("import")
def import_dataset(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="Folder holding normal/ and/or anomaly/ subfolders of .png/.jpg images.",
            exists=True,
            file_okay=False,
            dir_okay=True,
        ),
    ],
    project: Annotated[str, typer.Option("--project", help="Project name.")],
    dataset_type: Annotated[DatasetType, typer.Option("--type", help="Dataset to fill.")],
    create_project: Annotated[
        bool, typer.Option("--create-project", help="Create the project if it does not exist.")
    ] = False,
    endpoint_url: Annotated[
        str | None,
        typer.Option("--endpoint-url",
                     help="Loupe endpoint (else env LOUPE_ENDPOINT_URL, else http://127.0.0.1:8080)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Signing region (else env AWS_DEFAULT_REGION, else us-east-1)."),
    ] = None,
) -> None:
    """Upload a folder of labelled images and add them to the project's train or test dataset."""
    console = Console()
    try:
        summary = run_import(
            directory,
            project,
            dataset_type.value,
            endpoint_url=endpoint_url,
            region=region,
            create_project=create_project,
            hooks=RichHooks(console, directory),
        )
    except FolderError as exc:
        raise typer.BadParameter(str(exc), param_hint="DIR") from None
    except ProjectNotFound as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except (ClientError, BotoCoreError, DatasetWaitTimeout) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    render_summary(console, summary, directory)
    raise typer.Exit(summary.exit_code)


model_app = typer.Typer(help="Train and inspect model versions.", no_args_is_help=True)
app.add_typer(model_app, name="model")


@model_app.command("train")
def train_model(
    project: Annotated[str, typer.Option("--project", "-p", help="Project to train a model version for.")],
    output: Annotated[str | None, typer.Option(help="Where the evaluation goes: s3://bucket/prefix "
                                               "(default s3://loupe-output/<project>/).")] = None,
    description: Annotated[str | None,
                           typer.Option(help="Description of the version ([0-9A-Za-z._-]).")] = None,
    wait: Annotated[bool,
                    typer.Option("--wait/--no-wait", help="Follow training and print the metrics.")] = False,
    endpoint_url: Annotated[str | None, typer.Option(help="Loupe endpoint (default LOUPE_ENDPOINT_URL or "
                                                     "http://127.0.0.1:8080).")] = None,
    region: Annotated[str | None,
                      typer.Option(help="Region (default AWS_DEFAULT_REGION or us-east-1).")] = None,
) -> None:
    """Start training a new model version (CreateModel); with --wait, show progress and metrics."""
    from .connection import WaitTimeout, resolve_connection
    from .training import evaluation, parse_output, start_training, wait_for_model

    console = Console()
    connection = resolve_connection(endpoint_url, region)
    if connection.used_dev_credentials:
        console.print("[yellow]note:[/] no AWS credentials found; using the local development keys")
    try:
        output_config = parse_output(output or f"s3://loupe-output/{project}/")
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    client = connection.lookout_client()
    try:
        meta = start_training(client, project, output_config, description)
        version = meta["ModelVersion"]
        console.print(f"Model version [bold]{version}[/] of {project}: {meta['Status']} — "
                      f"{meta.get('StatusMessage', '')}")
        if not wait:
            return
        with console.status("Training…") as status:
            desc = wait_for_model(client, project, version,
                                  on_status=lambda d: status.update(d.get("StatusMessage") or d["Status"]))
    except (ClientError, BotoCoreError, WaitTimeout) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if desc["Status"] != "TRAINED":
        console.print(f"[red]{desc['Status']}:[/] {desc.get('StatusMessage', '')}")
        raise typer.Exit(1)
    table = Table(title=f"{project} model {version}: TRAINED")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in desc.get("Performance", {}).items():
        table.add_row(name, f"{value:.3f}")
    try:
        summary = evaluation(connection, project, version)
    except httpx.HTTPError as exc:
        summary = {}
        console.print(f"[yellow]note:[/] evaluation details unavailable ({exc})")
    for key in ("ImageAUROC", "PixelAUROC", "Threshold"):
        if summary.get(key) is not None:
            table.add_row(key, f"{summary[key]:.3f}")
    if summary.get("TestImages"):
        table.add_row("test images (normal / anomaly)",
                      f"{summary['TestImages']['normal']} / {summary['TestImages']['anomaly']}")
    console.print(table)
    console.print(desc.get("StatusMessage", ""))
    if summary.get("artifacts"):
        console.print(f"Report: {connection.endpoint_url}{summary['artifacts']['report.html']}",
                      soft_wrap=True)


@model_app.command("package")
def package_model(
    project: Annotated[str, typer.Option("--project", "-p", help="Project of the model version.")],
    component: Annotated[str, typer.Option(help="Greengrass component name (ComponentName).")],
    bucket: Annotated[str, typer.Option(help="S3 bucket the job writes the component to.")],
    version: Annotated[str, typer.Option("--version", "-v",
                                         help="Model version (a number, or latest).")] = "latest",
    component_version: Annotated[str | None, typer.Option(help="ComponentVersion (default 1.0.0).")] = None,
    prefix: Annotated[str | None, typer.Option(help="Key prefix in the bucket.")] = None,
    platform: Annotated[str | None,
                        typer.Option(help="OS/ARCH[/ACCELERATOR] (default LINUX/X86_64).")] = None,
    device: Annotated[str | None,
                      typer.Option(help="TargetDevice instead of --platform (jetson_xavier).")] = None,
    job_name: Annotated[str | None, typer.Option(help="JobName (default: generated).")] = None,
    out: Annotated[Path, typer.Option(help="Where the bundle is unpacked.")] = Path("."),
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
) -> None:
    """Package a model version for the edge (StartModelPackagingJob), follow the job, then download
    and unpack its bundle, ready for `python -m loupe_edge serve`."""
    from .connection import WaitTimeout, resolve_connection
    from .packaging import (BundleRejected, download_bundle, parse_target, start_packaging,
                            unpack, wait_for_job)

    console = Console()
    connection = resolve_connection(endpoint_url, region)
    if connection.used_dev_credentials:
        console.print("[yellow]note:[/] no AWS credentials found; using the local development keys")
    try:
        target = parse_target(platform, device)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    location = {"Bucket": bucket, **({"Prefix": prefix} if prefix else {})}
    greengrass = {"ComponentName": component, "S3OutputLocation": location, **target,
                  **({"ComponentVersion": component_version} if component_version else {})}
    client = connection.lookout_client()
    try:
        job = start_packaging(client, project, version, greengrass, job_name)
        console.print(f"Packaging job [bold]{job}[/] for {project} model {version} started.")
        with console.status("Packaging…") as status:
            found = wait_for_job(
                client, project, job,
                on_status=lambda d: status.update(f"{d['Status']}: {d.get('StatusMessage') or ''}"))
        if found["Status"] != "SUCCEEDED":
            console.print(f"[red]{found['Status']}:[/] {found.get('StatusMessage', '')}")
            raise typer.Exit(1)
        console.print(found.get("StatusMessage", ""), soft_wrap=True)
        folder = unpack(download_bundle(connection, project, job), out)
    except (ClientError, BotoCoreError, WaitTimeout, httpx.HTTPError, BundleRejected) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(f"Bundle unpacked in [bold]{folder}[/]. Serve it on the Edge Agent socket with:")
    console.print(f"  PYTHONPATH={folder}/runtime python3 -m loupe_edge serve --models {folder} --start all",
                  soft_wrap=True, highlight=False)


class RichIngestHooks:
    """Renders `loupe ingest` progress (the ingest.IngestHooks callbacks): one bar while images
    are published, a second while their results come back."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task: TaskID | None = None

    def images_found(self, scan: FolderScan) -> None:
        n = len(scan.others)
        other = f", ignoring {n} other file{'' if n == 1 else 's'}" if n else ""
        self.console.print(f"Found {len(scan.images)} images{other}.")

    def _bar(self, description: str, total: int) -> None:
        if self.progress is None:
            self.progress = progress_bar(self.console)
            self.progress.start()
        self.task = self.progress.add_task(description, total=total)

    def publish_started(self, total: int) -> None:
        self._bar("Publishing", total)

    def image_done(self, image_id: str, not_sent: NotSent | None, failed: bool) -> None:
        if self.progress is None or self.task is None:
            raise RuntimeError("image_done before publish_started")
        if not_sent is not None:
            mark = "[red]✗[/]" if failed else "[yellow]skipped[/]"
            self.progress.console.print(f"{mark} {image_id}: {not_sent.reason}")
        self.progress.advance(self.task)

    def publish_finished(self) -> None: ...

    def results_started(self, expected: int) -> None:
        self._bar("Results", expected)

    def result_received(self, outcome: Outcome) -> None:
        if self.progress is None or self.task is None:
            raise RuntimeError("result_received before results_started")
        self.progress.advance(self.task)

    def results_finished(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def render_ingest_summary(console: Console, report: IngestReport) -> None:
    summary = report.summary
    table = Table(title=f"Ingest into {report.project} model {report.model_version}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("Images found", str(len(report.image_ids)))
    if report.skipped:
        table.add_row("Skipped (not sent)", Text(str(len(report.skipped)), style="yellow"))
    if report.failed:
        table.add_row("Failed to send", Text(str(len(report.failed)), style="red"))
    table.add_row("Sent", str(report.sent))
    table.add_row("Normal", str(summary.normal))
    table.add_row("Anomalous", str(summary.anomalous))
    for (error_code, code), count in sorted(summary.errors.items()):
        table.add_row(f"Error {error_code} {code}", Text(str(count), style="red"))
    if summary.duplicates:
        table.add_row("Duplicate results (ignored)", str(summary.duplicates))
    table.add_row("No result", Text(str(len(summary.missing)), style="red" if summary.missing else ""))
    console.print(table)

    errors = [o for o in summary.outcomes if o.status == "error"]
    if errors:
        listed = Table(title=f"Images with errors (first {MAX_LISTED_FAILURES})" if len(errors) >
                       MAX_LISTED_FAILURES else "Images with errors")
        listed.add_column("Image")
        listed.add_column("Code", style="red")
        listed.add_column("Message")
        for outcome in sorted(errors, key=lambda o: o.image_id)[:MAX_LISTED_FAILURES]:
            listed.add_row(outcome.image_id, outcome.code, outcome.message)
        console.print(listed)
    if summary.missing:
        shown = ", ".join(summary.missing[:MAX_LISTED_FAILURES])
        extra = len(summary.missing) - MAX_LISTED_FAILURES
        more = f" and {extra} more" if extra > 0 else ""
        console.print(f"[red]No result within the timeout for:[/] {shown}{more}")


@app.command("ingest")
def ingest_folder(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR",
            help="Folder of .png/.jpg images (searched recursively).",
            exists=True,
            file_okay=False,
            dir_okay=True,
        ),
    ],
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="Model version to score with (it must be hosted).")
    ],
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for results after the last image is sent.")
    ] = 120.0,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", dir_okay=False, help="Write one JSON line per image (without the mask)."
        ),
    ] = None,
    bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap servers (default LOUPE_KAFKA_BOOTSTRAP or 127.0.0.1:9092)."),
    ] = None,
) -> None:
    """Score a folder of images through the Kafka ingest topic and summarise the results."""
    from aiokafka.errors import KafkaError

    from .ingest import IngestError, check_target, resolve_settings, run_ingest, write_jsonl

    console = Console()
    try:
        check_target(project, model)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--project/--model") from None
    try:
        settings = resolve_settings(bootstrap)
    except ValueError as exc:  # pydantic's ValidationError: a malformed LOUPE_* variable
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    try:
        report = run_ingest(directory, project, model, settings=settings, timeout=timeout,
                            hooks=RichIngestHooks(console))
    except FolderError as exc:
        raise typer.BadParameter(str(exc), param_hint="DIR") from None
    except (IngestError, KafkaError) as exc:
        console.print(f"[red]error:[/] {exc} (bootstrap {settings.kafka_bootstrap})")
        raise typer.Exit(1) from None
    render_ingest_summary(console, report)
    if output is not None:
        try:
            write_jsonl(output, report)
        except OSError as exc:
            console.print(f"[red]error:[/] cannot write {output}: {exc.strerror or exc}")
            raise typer.Exit(1) from None
        console.print(f"Wrote {len(report.image_ids)} lines to {output}")
    raise typer.Exit(report.exit_code)


reviewer_app = typer.Typer(help="Reviewer accounts for the review page (/loupe/review).",
                           no_args_is_help=True)
app.add_typer(reviewer_app, name="reviewer")
EndpointOption = Annotated[str | None, typer.Option(help="Loupe endpoint (default LOUPE_ENDPOINT_URL or "
                                                    "http://127.0.0.1:8080).")]
RegionOption = Annotated[str | None, typer.Option(help="Region (default AWS_DEFAULT_REGION or us-east-1).")]


def _native_call(endpoint_url: str | None, region: str | None, action):  # noqa: ANN001, ANN202
    from .connection import NativeCallError, resolve_connection

    console = Console()
    try:
        return console, action(resolve_connection(endpoint_url, region))
    except NativeCallError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@reviewer_app.command("add")
def add_reviewer(
    username: Annotated[str, typer.Argument(help="Sign-in name ([A-Za-z0-9_.@-], up to 64).")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="LOUPE_REVIEWER_PASSWORD", help="At least 8 characters.")],
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
) -> None:
    """Create a reviewer account (the password is asked for, or taken from LOUPE_REVIEWER_PASSWORD)."""
    from . import reviewers

    console, _ = _native_call(endpoint_url, region, lambda c: reviewers.add(c, username, password))
    console.print(f"Reviewer [bold]{username}[/] can now sign in at /loupe/review")


@reviewer_app.command("list")
def list_reviewers(endpoint_url: EndpointOption = None, region: RegionOption = None) -> None:
    """List reviewer accounts."""
    from . import reviewers

    console, found = _native_call(endpoint_url, region, reviewers.list_all)
    table = Table("reviewer", "created")
    for reviewer in found:
        table.add_row(reviewer["username"], reviewer["created_at"])
    console.print(table)


@reviewer_app.command("remove")
def remove_reviewer(username: str, endpoint_url: EndpointOption = None, region: RegionOption = None) -> None:
    """Delete a reviewer account and end its sessions."""
    from . import reviewers

    console, _ = _native_call(endpoint_url, region, lambda c: reviewers.remove(c, username))
    console.print(f"Reviewer {username} removed")


key_app = typer.Typer(help="Access keys and their roles (admin keys only).", no_args_is_help=True)
app.add_typer(key_app, name="key")


class KeyRole(str, Enum):
    admin = "admin"
    read_only = "read-only"
    detect = "detect"
    reviewer_admin = "reviewer-admin"


@key_app.command("create")
def create_key(
    role: Annotated[KeyRole, typer.Option(help="admin: everything; read-only: every GET; detect: "
                                          "DetectAnomalies and image tagging; reviewer-admin: "
                                          "human review.")],
    description: Annotated[str, typer.Option(help="What the key is for (up to 256 characters).")] = "",
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
) -> None:
    """Create an access key. Its secret is shown this once: store it now."""
    from . import keys

    console, created = _native_call(endpoint_url, region, lambda c: keys.create(c, role.value, description))
    console.print(f"access key id:     [bold]{created['access_key_id']}[/]\n"
                  f"secret access key: [bold]{created['secret_access_key']}[/]\n"
                  f"role:              {created['role']}\n"
                  "The secret is not shown again and cannot be read back.")


@key_app.command("list")
def list_keys(endpoint_url: EndpointOption = None, region: RegionOption = None) -> None:
    """List access keys (never their secrets)."""
    from . import keys

    console, found = _native_call(endpoint_url, region, keys.list_all)
    table = Table()
    table.add_column("access key id", no_wrap=True)  # never cut: it is copied from here
    for name in ("role", "status", "created", "description"):
        table.add_column(name)
    for key in found:
        table.add_row(key["access_key_id"], key["role"], key["status"], key["created_at"] or "(settings)",
                      key["description"])
    console.print(table)


@key_app.command("disable")
def disable_key(key_id: str, endpoint_url: EndpointOption = None, region: RegionOption = None) -> None:
    """Stop accepting a key (at once, on every gateway); `enable` takes it back."""
    from . import keys

    console, _ = _native_call(endpoint_url, region, lambda c: keys.set_status(c, key_id, "Inactive"))
    console.print(f"Access key {key_id} disabled")


@key_app.command("enable")
def enable_key(key_id: str, endpoint_url: EndpointOption = None, region: RegionOption = None) -> None:
    """Accept a disabled key again."""
    from . import keys

    console, _ = _native_call(endpoint_url, region, lambda c: keys.set_status(c, key_id, "Active"))
    console.print(f"Access key {key_id} enabled")


@key_app.command("delete")
def delete_key(key_id: str, endpoint_url: EndpointOption = None, region: RegionOption = None) -> None:
    """Delete a key for good."""
    from . import keys

    console, _ = _native_call(endpoint_url, region, lambda c: keys.delete(c, key_id))
    console.print(f"Access key {key_id} deleted")
