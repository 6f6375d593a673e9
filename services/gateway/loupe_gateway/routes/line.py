"""Loupe-native view of the production line (AILabTools envelope): the latest ingest results of a
project, read from the tail of the results topic, and an ingested image, read back from the ingest
topic while the broker still holds it. The topics are the record: nothing is copied elsewhere."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response

from loupe_common import dataset_messages as dm
from loupe_common.errors import AilabError, ailab_envelope
from loupe_common.hosting_messages import H_BLOB
from loupe_common.settings import Settings
from loupe_common.topics import INGEST, INGEST_RESULTS

from ..auth import signed_body
from ..context import GatewayDep, RequestId
from ..validation import build

router = APIRouter(prefix="/loupe/v1", dependencies=[Depends(signed_body(0))])
TAIL_RECORDS = 1000  # per partition: how far back the latest results are looked for
READ_SECONDS = 5.0
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    # One per request: the console polls every 2 s, and a consumer kept open would be gateway state.
    return AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                            client_id="gateway-line", request_timeout_ms=int(READ_SECONDS * 1000),
                            max_partition_fetch_bytes=settings.kafka_max_message_bytes + 65536)


@asynccontextmanager
async def _reading(settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = _consumer(settings)
    await consumer.start()
    try:
        yield consumer
    finally:
        # aiokafka 0.14 stops a consumer whose coordinator task has not run yet by cancelling that task
        # and awaiting it: a CancelledError (a bare 500) instead of our answer. One loop turn lets it run.
        await asyncio.sleep(0)
        await consumer.stop()


async def _tail(settings: Settings, topic: str, per_partition: int) -> list:
    """The last `per_partition` records of every partition of `topic`."""
    async with _reading(settings) as consumer:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        wanted = {tp: ends[tp] for tp in partitions if ends[tp] > starts[tp]}
        for tp in wanted:
            consumer.seek(tp, max(starts[tp], ends[tp] - per_partition))
        records = []
        while wanted:
            batch = await consumer.getmany(*wanted, timeout_ms=int(READ_SECONDS * 1000))
            if not batch:
                break  # the broker gave nothing in time: answer with what was read
            for tp, found in batch.items():
                records += found
                if found and found[-1].offset + 1 >= wanted[tp]:
                    wanted.pop(tp)
        return records


@router.get("/projects/{project_name}/ingest-results")
async def ingest_results(gw: GatewayDep, rid: RequestId, project_name: str,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50) -> JSONResponse:
    build(dm.DescribeProject, request_id=rid, project_name=project_name)
    records = await asyncio.wait_for(_tail(gw.settings, INGEST_RESULTS, TAIL_RECORDS), READ_SECONDS * 2)
    results = []
    for record in sorted(records, key=lambda r: r.timestamp, reverse=True):
        try:
            result = json.loads(record.value)
        except (TypeError, ValueError):
            continue  # not a Loupe result: someone else's record on the topic
        if isinstance(result, dict) and result.get("project") == project_name:
            results.append({**result, "received_at": record.timestamp})
            if len(results) == limit:
                break
    status, body = ailab_envelope(request_id=rid, data={"results": results})
    return JSONResponse(body, status_code=status)


@router.get("/ingest/{partition}/{offset}/image")
async def ingested_image(gw: GatewayDep, partition: Annotated[int, Path(ge=0)],
                         offset: Annotated[int, Path(ge=0)]) -> Response:
    """The image an ingest record carried, while the broker keeps the record (claim-checked images
    are deleted once answered, so they are not shown)."""
    gone = AilabError("ERROR_FILE_NOT_FOUND", f"The broker no longer holds {INGEST} {partition}/{offset}")
    async with _reading(gw.settings) as consumer:
        tp = TopicPartition(INGEST, partition)
        if partition not in (consumer.partitions_for_topic(INGEST) or ()):
            raise AilabError("ERROR_FILE_NOT_FOUND", f"{INGEST} has no partition {partition}")
        consumer.assign([tp])
        if offset < (await consumer.beginning_offsets([tp]))[tp]:
            raise gone
        # Past the end the record cannot come: a short look only (the local broker's end offset may lag).
        wait = READ_SECONDS if offset < (await consumer.end_offsets([tp]))[tp] else 0.5
        consumer.seek(tp, offset)
        batch = await consumer.getmany(tp, timeout_ms=int(wait * 1000), max_records=1)
    record = next(iter(batch.get(tp, [])), None)
    if record is None or record.offset != offset:
        raise gone
    claimed = any(k == H_BLOB for k, _ in record.headers or ())
    media = next((t for magic, t in IMAGE_MAGIC.items() if (record.value or b"").startswith(magic)), None)
    if claimed or media is None:
        raise AilabError("ERROR_FILE_NOT_FOUND", f"{INGEST} {partition}/{offset} carries no image bytes")
    return Response(record.value, media_type=media, headers={"Cache-Control": "private, max-age=3600"})
