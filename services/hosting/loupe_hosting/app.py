"""The hosting service: which model versions run, on how many inference units, on which workers.

Handlers:
  loupe.hosting.commands     -> on_command   (StartModel, StopModel, ResolveDeployment, DescribeHosting;
                                              request/reply)
  loupe.inference.heartbeats -> on_heartbeat (worker liveness and model load states)
  loupe.presence             -> on_presence  (reply topics in use; the janitor deletes the others)
Publishes: loupe.hosting.assignments (the assignment table, every heartbeat interval and on change).
Asks the training service (loupe.training.commands) to move model statuses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from faststream import Context, ContextRepo
from faststream.asgi import AsgiFastStream

from loupe_common import hosting_messages as m
from loupe_common.db import connect
from loupe_common.kafka import (
    RequestClient,
    ensure_topics,
    keep_topics,
    make_broker,
    publish_with_retry,
    service_app,
    service_subscriber_options,
)
from loupe_common.messages import Reply, ReplyTopicsInUse, answer
from loupe_common.settings import Settings
from loupe_common.topics import (
    HOSTING_ASSIGNMENTS,
    HOSTING_COMMANDS,
    REPLY_PRESENCE,
    WORKER_HEARTBEATS,
    reply_topic,
)

from . import deployments
from .janitor import ReplyTopicJanitor
from .reconcile import Reconciler
from .store import HostingState

State = Annotated[HostingState, Context("state")]


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="hosting")
    replies = reply_topic("hosting", settings.process_name)
    training = RequestClient(broker, settings, replies)
    to_assignments = broker.publisher(HOSTING_ASSIGNMENTS)
    reconciler: list[Reconciler] = []
    janitor = ReplyTopicJanitor(settings.reply_topic_grace_seconds)

    async def dispatch(state: HostingState, cmd: m.HostingCommand) -> Reply:
        match cmd:
            case m.StartModel():
                reply = await deployments.start_model(state, cmd)
            case m.StopModel():
                reply = await deployments.stop_model(state, cmd)
            case m.ResolveDeployment():
                return await deployments.resolve_deployment(state, cmd)
            case m.DescribeHosting():
                return await deployments.describe_hosting(state, cmd, reconciler[0].autoscaler)
        reconciler[0].wake.set()  # place the new units now, not at the next tick
        return reply

    @broker.subscriber(HOSTING_COMMANDS, **service_subscriber_options(settings, "loupe-hosting"))
    async def on_command(cmd: m.HostingCommand, state: State) -> Reply:
        return await answer(dispatch(state, cmd), service="hosting", command=cmd)

    @broker.subscriber(WORKER_HEARTBEATS, auto_offset_reset="latest",
                       fetch_max_wait_ms=settings.kafka_idle_fetch_max_wait_ms, no_reply=True)
    async def on_heartbeat(beat: m.WorkerHeartbeat, state: State) -> None:
        known = set(state.fleet.heartbeats)
        previous = state.fleet.heartbeats.get(beat.worker_id)
        state.fleet.heard(beat)
        if beat.worker_id not in known or beat.stopping or (previous and previous.models != beat.models):
            reconciler[0].wake.set()  # a worker came, left, or finished loading: act now

    @broker.subscriber(REPLY_PRESENCE, auto_offset_reset="latest",
                       fetch_max_wait_ms=settings.kafka_idle_fetch_max_wait_ms, no_reply=True)
    async def on_presence(announcement: ReplyTopicsInUse) -> None:
        janitor.heard(announcement)

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        await ensure_topics(settings)
        await training.open()
        state = HostingState(settings=settings, db=connect(settings, owner="hosting"), training=training)
        context.set_global("state", state)

        async def publish(table: m.AssignmentTable) -> None:
            await publish_with_retry(lambda: to_assignments.publish(table))

        reconciler.append(Reconciler(state, publish))

        async def hosted_topics() -> list[tuple[str, int]]:
            return [(d["topic"], settings.topic_partitions)
                    async for d in state.deployments.find({"status": {"$in": [m.STARTING, m.HOSTED]}})]

        keep_topics(hosted_topics)  # after a broker restart, the hosted models' request topics come back too
        try:
            yield
        finally:
            await training.close()

    background = [lambda: reconciler[0].run(), lambda: janitor.run(settings)]
    return service_app(broker, settings, lifespan=lifespan, background=background, keep_catalogue=True)
