"""The human-loop service: the A2I runtime API, flow definitions, reviewers and their tasks, and
the access keys besides the configured one (who may do what: the identities live here).

Handlers:
  loupe.humanloop.commands -> on_command (request/reply from the gateway; StartHumanLoop also from
                                          inference workers whose detections met a flow's conditions)
  loupe.model.events       -> on_model_event (a training run takes the reviewed images waiting)
Publishes: loupe.humanloop.activations (the activation table, every few seconds and on change),
loupe.access.keys (the key table, likewise), loupe.humanloop.events (every loop status change).
Asks the dataset service (StoreUpload, UpdateDatasetEntries) and the training service (CreateModel,
with RetrainAfter).
A sweeper expires loops, finishes stopping ones and retries answers owed to a dataset.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from faststream import Context, ContextRepo
from faststream.asgi import AsgiFastStream

from loupe_common import human_loop_messages as m
from loupe_common.blobs import open_blob_store
from loupe_common.buckets import open_buckets
from loupe_common.dataset_messages import ModelVersionEvent
from loupe_common.db import connect
from loupe_common.errors import ailab_envelope, new_request_id
from loupe_common.kafka import (
    RequestClient,
    ensure_topics,
    make_broker,
    publish_with_retry,
    service_app,
    service_subscriber_options,
)
from loupe_common.messages import Reply, answer
from loupe_common.settings import Settings
from loupe_common.topics import (
    ACCESS_KEYS,
    HUMAN_LOOP_ACTIVATIONS,
    HUMAN_LOOP_COMMANDS,
    HUMAN_LOOP_EVENTS,
    MODEL_EVENTS,
    reply_topic,
)

from . import completion, flows, keys, loops, review
from .store import HumanLoopState, ensure_indexes

log = logging.getLogger("loupe.human-loop")
State = Annotated[HumanLoopState, Context("state")]
SWEEP_SECONDS = 1.0


async def dispatch(state: HumanLoopState, cmd: Any) -> Reply:
    match cmd:
        case m.StartHumanLoop():
            return await loops.start(state, cmd)
        case m.DescribeHumanLoop():
            return await loops.describe(state, cmd)
        case m.ListHumanLoops():
            return await loops.list_loops(state, cmd)
        case m.StopHumanLoop():
            return await loops.stop(state, cmd)
        case m.DeleteHumanLoop():
            return await loops.delete(state, cmd)
        case m.GetHumanLoopOutput():
            loop = await loops.get_loop(state, cmd.human_loop_name)
            return Reply.success({**loops.describe_body(loop), "Feedback": loop.get("feedback"),
                                  "ConsolidatedAnswer": loop.get("consolidated")})
        case m.CreateFlowDefinition():
            return await flows.create(state, cmd)
        case m.DescribeFlowDefinition():
            return await flows.describe(state, cmd)
        case m.ListFlowDefinitions():
            return await flows.list_flows(state, cmd)
        case m.DeleteFlowDefinition():
            return await flows.delete(state, cmd)
        case m.ReviewedImages():
            return Reply.success(await completion.reviewed_images(state, cmd.project_name))
        case m.CreateReviewer():
            return await review.create_reviewer(state, cmd)
        case m.ListReviewers():
            return await review.list_reviewers(state, cmd)
        case m.DeleteReviewer():
            return await review.delete_reviewer(state, cmd)
        case m.CreateAccessKey():
            return await keys.create(state, cmd)
        case m.ListAccessKeys():
            return await keys.list_keys(state, cmd)
        case m.UpdateAccessKey():
            return await keys.update(state, cmd)
        case m.DeleteAccessKey():
            return await keys.delete(state, cmd)
        case m.ResolveAccessKey():
            return await keys.resolve(state, cmd)
        case m.SignIn():
            return await review.sign_in(state, cmd)
        case m.WhoAmI():
            return Reply.success({"username": await review.reviewer_of(state, cmd)})
        case m.SignOut():
            return await review.sign_out(state, cmd)
        case m.ReviewQueue():
            return await review.queue(state, cmd)
        case m.ClaimTask():
            return await review.claim(state, cmd)
        case m.TaskFile():
            return await review.task_file(state, cmd)
        case m.AnswerTask():
            return await review.answer(state, cmd)
        case m.SkipTask():
            return await review.skip(state, cmd)
    raise AssertionError(f"unhandled command {cmd!r}")


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="human-loop")
    replies = reply_topic("human-loop", settings.process_name)
    rpc = RequestClient(broker, settings, replies)
    to_events = broker.publisher(HUMAN_LOOP_EVENTS)
    to_activations = broker.publisher(HUMAN_LOOP_ACTIVATIONS)
    to_keys = broker.publisher(ACCESS_KEYS)
    activations_changed, keys_changed = asyncio.Event(), asyncio.Event()
    states: list[HumanLoopState] = []

    @broker.subscriber(HUMAN_LOOP_COMMANDS, **service_subscriber_options(settings, "loupe-human-loop"))
    async def on_command(cmd: m.HumanLoopCommand, state: State) -> Reply:
        return await answer(dispatch(state, cmd), service="human-loop", command=cmd)

    @broker.subscriber(MODEL_EVENTS,
                       **service_subscriber_options(settings, "loupe-human-loop-models", background=True),
                       no_reply=True)
    async def on_model_event(event: ModelVersionEvent, state: State) -> None:
        if event.kind == "created":
            await completion.on_model_created(state, event.project_name)

    async def publish_event(name: str, data: dict[str, Any]) -> None:
        rid = new_request_id()
        _, envelope = ailab_envelope(request_id=rid, data=data)
        await publish_with_retry(lambda: to_events.publish(envelope, key=name.encode()))

    def table_publisher(what: str, changed: asyncio.Event,
                        build: Callable[[HumanLoopState, int], Awaitable[Any]],
                        publisher: Any) -> Callable[[], Coroutine[Any, Any, None]]:
        """A loop re-sending a table every few seconds and at once on change (readers start at "latest")."""
        async def publish() -> None:
            generation = 0
            while True:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(changed.wait(), settings.activation_table_seconds)
                changed.clear()
                generation += 1
                try:
                    table = await build(states[0], generation)
                    await publish_with_retry(functools.partial(publisher.publish, table))
                except Exception:  # noqa: BLE001 - the next round sends it again
                    log.exception("publishing the %s table failed", what)
        return publish

    async def sweep() -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await completion.complete_answered(states[0])
                await loops.sweep(states[0])
                await completion.retry_feedback(states[0])
                await completion.retrain_when_due(states[0])
            except Exception:  # noqa: BLE001 - the next sweep tries again
                log.exception("sweep failed")

    @asynccontextmanager
    async def lifespan(context: ContextRepo) -> AsyncIterator[None]:
        await ensure_topics(settings)
        await rpc.open()
        db = connect(settings, owner="human_loop")
        await ensure_indexes(db)
        state = HumanLoopState(settings=settings, db=db, blobs=open_blob_store(settings),
                               buckets=open_buckets(settings), rpc=rpc, publish_event=publish_event,
                               activations_changed=activations_changed.set, keys_changed=keys_changed.set)
        states.append(state)
        context.set_global("state", state)
        try:
            yield
        finally:
            await rpc.close()

    return service_app(broker, settings, lifespan=lifespan, background=[
        table_publisher("activation", activations_changed, flows.activation_table, to_activations),
        table_publisher("key", keys_changed, keys.key_table, to_keys),
        sweep,
    ])
