"""The inference service. Its Kafka handlers arrive with the issue that builds it; until then it joins
the broker and answers its health routes (/health, /ready) so deployments can run it."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from loupe_common.kafka import make_broker, service_app
from loupe_common.settings import Settings


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings, client_id="inference")
    return service_app(broker)
