"""Builds the gateway app: routers, error rendering, and the Kafka connection in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from loupe_common.blobs import open_blob_store
from loupe_common.buckets import open_buckets
from loupe_common.kafka import RequestClient, cancel_all, ensure_topics, make_broker, topic_keeper
from loupe_common.settings import Settings
from loupe_common.topics import ACCESS_KEYS, HOSTING_ASSIGNMENTS, reply_topic

from .context import Gateway
from .responses import RequestIdMiddleware, install_error_handlers
from .routes import (console, dataset_browser, detect, health, human_loops, image_tagging, keys, line,
                     lookout, models, native, review)
from .routing import RouteTable


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_topics(settings)
        broker = make_broker(settings, client_id="gateway")
        rpc = RequestClient(broker, settings, reply_topic("gateway", settings.process_name),
                            fetch_max_wait_ms=settings.kafka_detect_fetch_max_wait_ms)
        await rpc.open()
        routes = RouteTable()
        gateway = Gateway(settings=settings, rpc=rpc, blobs=open_blob_store(settings), routes=routes,
                          buckets=open_buckets(settings))
        for topic, follow in ((HOSTING_ASSIGNMENTS, routes.update), (ACCESS_KEYS, gateway.keys.update)):
            broker.subscriber(topic, auto_offset_reset="latest",
                              fetch_max_wait_ms=settings.kafka_idle_fetch_max_wait_ms, no_reply=True)(follow)
        await broker.start()
        app.state.gateway = gateway
        keeper = asyncio.create_task(topic_keeper(settings, broker))
        try:
            yield
        finally:
            await cancel_all([keeper])
            await broker.stop()
            await rpc.close()

    app = FastAPI(
        title="Loupe gateway",
        lifespan=lifespan,
        docs_url="/loupe/docs",
        openapi_url="/loupe/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health.router)
    app.include_router(lookout.router)
    app.include_router(detect.router)
    app.include_router(detect.native_router)
    app.include_router(native.router)
    app.include_router(models.router)
    app.include_router(human_loops.router)
    app.include_router(review.admin)
    app.include_router(keys.router)
    app.include_router(review.page)
    app.include_router(console.router)
    app.include_router(dataset_browser.router)
    app.include_router(line.router)
    app.include_router(image_tagging.router)
    return app
