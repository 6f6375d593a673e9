"""ARNs in the AWS shape: arn:aws:lookoutvision:<region>:<account>:project/<name> and
model/<name>/<version>."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ResourceType, validation
from .settings import Settings

_ARN = re.compile(
    r"^arn:aws:lookoutvision:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?:project/(?P<project>[a-zA-Z0-9][a-zA-Z0-9_\-]{0,254})"
    r"|model/(?P<mproject>[a-zA-Z0-9][a-zA-Z0-9_\-]{0,254})/(?P<version>[1-9][0-9]{0,9}))$"
)


@dataclass(frozen=True)
class ResourceArn:
    resource_type: ResourceType
    project_name: str
    model_version: str | None = None


def project_arn(settings: Settings, project_name: str) -> str:
    return f"arn:aws:lookoutvision:{settings.region}:{settings.account_id}:project/{project_name}"


def model_arn(settings: Settings, project_name: str, model_version: str) -> str:
    return (
        f"arn:aws:lookoutvision:{settings.region}:{settings.account_id}:"
        f"model/{project_name}/{model_version}"
    )


def parse_arn(settings: Settings, arn: str) -> ResourceArn:
    """Parse a project or model ARN of this account and region; anything else is a ValidationException."""
    match = _ARN.match(arn)
    if not match:
        raise validation(f"Invalid resource ARN '{arn}': expected a Lookout for Vision project or model ARN")
    if not settings.accepts_region(match["region"]) or match["account"] != settings.account_id:
        raise validation(
            f"Invalid resource ARN '{arn}': this endpoint serves region {settings.region}, "
            f"account {settings.account_id}"
        )
    if match["project"]:
        return ResourceArn(ResourceType.PROJECT, match["project"])
    return ResourceArn(ResourceType.MODEL, match["mproject"], match["version"])
