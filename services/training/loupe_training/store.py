"""The training service's state: model versions (collection `models`)."""

from __future__ import annotations

from dataclasses import dataclass

from loupe_common.db import Database
from loupe_common.settings import Settings


@dataclass
class TrainingState:
    settings: Settings
    db: Database

    @property
    def models(self):  # {_id: "<project>/<version>", project_name, version, arn, tags, ...}
        return self.db["models"]


async def ensure_indexes(state: TrainingState) -> None:
    await state.models.create_index([("project_name", 1), ("version", -1)])
