"""Where DetectAnomalies goes: the request topic of each HOSTED model version, read from the hosting
service's assignment table (re-sent every second). A version missing here is looked up with the
hosting service itself, which also gives the right error; so this is a cache, not domain state."""

from __future__ import annotations

from loupe_common.hosting_messages import HOSTED, AssignmentTable, ResolveDeployment
from loupe_common.kafka import RequestClient
from loupe_common.topics import HOSTING_COMMANDS, model_key


class RouteTable:
    def __init__(self) -> None:
        self._topics: dict[str, str] = {}
        self._units: dict[str, int] = {}  # by request topic: the workers holding a unit of the model
        self._generation = -1

    async def update(self, table: AssignmentTable) -> None:
        self._topics = {key: m.topic for key, m in table.models.items() if m.status == HOSTED}
        units: dict[str, int] = {}
        for keys in table.workers.values():
            for key in keys:
                if key in table.models:
                    units[table.models[key].topic] = units.get(table.models[key].topic, 0) + 1
        self._units = units
        self._generation = table.generation

    def units_for(self, topic: str) -> int:
        """Inference units serving a request topic, as the last assignment table said (1 if unknown)."""
        return self._units.get(topic, 1)

    async def topic_for(self, rpc: RequestClient, cmd: ResolveDeployment) -> str:
        if cmd.model_version != "latest":
            topic = self._topics.get(model_key(cmd.project_name, cmd.model_version))
            if topic is not None:
                return topic
        reply = await rpc.request(HOSTING_COMMANDS, cmd, key=cmd.project_name)
        return reply.unwrap()["topic"]
