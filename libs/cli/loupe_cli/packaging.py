"""`loupe model package`: StartModelPackagingJob, follow the job until it is final, then download
its edge bundle (Loupe's native bundle route) and unpack it, every file checked against the
bundle's manifest. UI-free: main.py renders."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from .connection import Connection, wait_until

FINAL = {"SUCCEEDED", "FAILED"}


class BundleRejected(Exception):
    """A downloaded bundle that is not what its manifest says."""


def parse_target(platform: str | None, device: str | None) -> dict:
    """--device jetson_xavier, or --platform OS/ARCH[/ACCELERATOR] (default LINUX/X86_64)."""
    if device and platform:
        raise ValueError("give --platform or --device, not both")
    if device:
        return {"TargetDevice": device}
    parts = (platform or "LINUX/X86_64").upper().split("/")
    if len(parts) not in (2, 3):
        raise ValueError("--platform looks like LINUX/X86_64, LINUX/ARM64 or LINUX/ARM64/NVIDIA")
    # Two parts leave out the accelerator.
    return {"TargetPlatform": dict(zip(("Os", "Arch", "Accelerator"), parts, strict=False))}


def start_packaging(client: Any, project: str, version: str, greengrass: dict, job_name: str | None = None,
                    description: str | None = None) -> str:
    kwargs: dict[str, Any] = {"ProjectName": project, "ModelVersion": version,
                              "Configuration": {"Greengrass": greengrass}}
    if job_name:
        kwargs["JobName"] = job_name
    if description:
        kwargs["Description"] = description
    return client.start_model_packaging_job(**kwargs)["JobName"]


def wait_for_job(client: Any, project: str, job: str, *, on_status: Callable[[dict], None] | None = None,
                 poll_interval: float = 1.0, timeout: float = 3600.0) -> dict:
    return wait_until(
        lambda: client.describe_model_packaging_job(ProjectName=project,
                                                    JobName=job)["ModelPackagingDescription"],
        FINAL, f"packaging job {job}", on_status=on_status, poll_interval=poll_interval, timeout=timeout)


def download_bundle(connection: Connection, project: str, job: str) -> bytes:
    response = connection.signed_get(f"/loupe/v1/projects/{project}/packaging-jobs/{job}/bundle", timeout=300)
    if response.status_code != 200:
        try:
            message = response.json()["error_detail"]["message"]
        except (ValueError, KeyError):
            message = response.text[:200]
        raise httpx.HTTPStatusError(f"bundle download: HTTP {response.status_code}: {message}",
                                    request=response.request, response=response)
    return response.content


def unpack(bundle: bytes, folder: Path) -> Path:
    """The bundle unpacked into `folder`/<component>-<version>/ (as Greengrass unarchives it),
    after checking every file's SHA-256 and that no path leaves the folder."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        files = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    try:
        manifest = json.loads(files["manifest.json"])
        component = manifest["component"]
    except (KeyError, ValueError) as error:
        raise BundleRejected(f"the bundle has no readable manifest.json ({error})") from None
    for path, facts in manifest.get("files", {}).items():
        if path not in files or hashlib.sha256(files[path]).hexdigest() != facts.get("sha256"):
            raise BundleRejected(f"{path} is missing or does not match its SHA-256 in manifest.json")
    for name in [*files, f"{component['name']}-{component['version']}"]:
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise BundleRejected(f"{name}: a path outside the bundle")  # before anything is written
    target = folder / f"{component['name']}-{component['version']}"
    for name, data in files.items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
    return target
