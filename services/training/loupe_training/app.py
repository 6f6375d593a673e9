"""The training service: its handlers and its startup.

Handlers:
  loupe.training.commands -> on_command (request/reply with the gateway)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from faststream import Context
from faststream.asgi import AsgiFastStream

from loupe_common import training_messages as m
from loupe_common.db import connect
from loupe_common.kafka import ensure_topics, make_broker, service_app, service_subscriber_options
from loupe_common.messages import Reply, answer
from loupe_common.settings import Settings
from loupe_common.topics import TRAINING_COMMANDS

from . import tags
from .store import TrainingState, ensure_indexes

State = Annotated[TrainingState, Context("state")]


async def dispatch(state: TrainingState, cmd: m.TrainingCommand) -> Reply:
    match cmd:
        case m.TagModel():
            return await tags.tag_model(state, cmd)
        case m.UntagModel():
            return await tags.untag_model(state, cmd)
        case m.ListModelTags():
            return await tags.list_model_tags(state, cmd)


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="training")

    @broker.subscriber(TRAINING_COMMANDS, **service_subscriber_options(settings, "loupe-training"))
    async def on_command(cmd: m.TrainingCommand, state: State) -> Reply:
        return await answer(dispatch(state, cmd), service="training", command=cmd)

    @asynccontextmanager
    async def lifespan(context: Context = Context()) -> AsyncIterator[None]:  # type: ignore[assignment]
        state = TrainingState(settings=settings, db=connect(settings))
        await ensure_indexes(state)
        await ensure_topics(settings)
        context.set_global("state", state)
        yield

    return service_app(broker, lifespan=lifespan)
