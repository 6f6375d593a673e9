"""The AWS CLI (awscli 1.42.60), unmodified, pointed at Loupe with --endpoint-url."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import DEV_KEY, DEV_SECRET, REGION


def aws(stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": DEV_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET,
           "AWS_DEFAULT_REGION": REGION, "AWS_MAX_ATTEMPTS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "awscli", "lookoutvision", *args, "--endpoint-url", stack.endpoint_url, "--output", "json"],
        capture_output=True, text=True, env=env, timeout=60,
    )


def test_awscli_project_round_trip(stack, project_name):
    created = aws(stack, "create-project", "--project-name", project_name)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["ProjectMetadata"]["ProjectName"] == project_name
    listed = aws(stack, "list-projects")
    assert project_name in [p["ProjectName"] for p in json.loads(listed.stdout)["Projects"]]
    missing = aws(stack, "describe-project", "--project-name", project_name + "-x")
    assert missing.returncode != 0
    assert "ResourceNotFoundException" in missing.stderr
    bad = aws(stack, "create-project", "--project-name", "no spaces allowed")
    assert bad.returncode != 0 and "ValidationException" in bad.stderr
