"""The configuration table (README) and the topic table (docs/architecture.md) are read against
the code, so they cannot drift: every setting and every catalogue topic is documented, and nothing
documented is gone."""

from __future__ import annotations

import re
from pathlib import Path

from loupe_common.settings import Settings
from loupe_common.topics import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
# Read by `make run` (deploy/local), not by the services' Settings.
MAKE_RUN_ONLY = {"LOUPE_INFERENCE_WORKERS"}


def section(title: str) -> str:
    start = README.index(title)
    following = README.find("\n## ", start + len(title))
    return README[start:following if following != -1 else None]


def test_every_setting_is_in_the_configuration_table_and_every_row_is_a_setting():
    table = section("## Configuration")
    documented = set(re.findall(r"`(LOUPE_[A-Z0-9_]+)`", table))
    settings = {f"LOUPE_{name.upper()}" for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings the README does not document"
    assert sorted(documented - settings - MAKE_RUN_ONLY) == [], "README rows that are no setting"


def test_every_catalogue_topic_is_in_the_topic_table():
    rows = [line for line in ARCHITECTURE.splitlines() if line.startswith("| `loupe.")]
    named = {name for line in rows for name in re.findall(r"`(loupe\.[a-z.<>_-]+)`", line.split("|")[1])}
    assert sorted(t.name for t in CATALOGUE if t.name not in named) == []
    assert sorted(n for n in named if "<" not in n and n not in {t.name for t in CATALOGUE}) == []
