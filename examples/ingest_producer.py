"""Send every PNG/JPEG in a folder to Loupe's ingest topic and print each image's result.

    pip install aiokafka
    python examples/ingest_producer.py ./images --project my-project --model 1

The model version must be hosted (StartModel). Each record is the raw image with loupe-* headers;
Loupe answers every record with one JSON envelope on loupe.ingest.results, carrying the record's
position in `source`, which is how results are matched to images here. `loupe ingest` does the
same with a progress bar and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

INGEST, RESULTS = "loupe.ingest", "loupe.ingest.results"
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


async def main(folder: Path, project: str, model: str, bootstrap: str, timeout: float) -> None:
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in CONTENT_TYPES)
    # Loupe's broker limit (LOUPE_KAFKA_MAX_MESSAGE_BYTES); results carry a mask, so fetch as much.
    limit = int(os.environ.get("LOUPE_KAFKA_MAX_MESSAGE_BYTES", 4 * 1024 * 1024))
    # No consumer group: we pick the partitions and offsets ourselves.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=limit + 65536)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=limit)
    await consumer.start()
    await producer.start()
    try:
        # Start reading results at the current end: older results answer other producers.
        partitions = [TopicPartition(RESULTS, p) for p in await producer.partitions_for(RESULTS)]
        consumer.assign(partitions)
        for tp, end in (await consumer.end_offsets(partitions)).items():
            consumer.seek(tp, end)

        sent: dict[tuple[int, int], str] = {}  # (partition, offset) of our record -> file name
        for path in images:
            headers = [
                ("loupe-project", project.encode()),
                ("loupe-model-version", model.encode()),
                ("content-type", CONTENT_TYPES[path.suffix.lower()].encode()),
                ("loupe-image-id", path.name.encode()),
            ]
            meta = await producer.send_and_wait(INGEST, path.read_bytes(), headers=headers)
            sent[(meta.partition, meta.offset)] = path.name
        print(f"sent {len(sent)} images; waiting for results")

        deadline = asyncio.get_running_loop().time() + timeout
        while sent and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    result = json.loads(record.value)
                    source = result["source"]
                    if source["topic"] != INGEST or (source["partition"], source["offset"]) not in sent:
                        continue  # another producer's image, or a duplicate of one we printed
                    name = sent.pop((source["partition"], source["offset"]))
                    if result["error_code"] == 0:
                        detection = result["data"]["DetectAnomalyResult"]
                        verdict = "ANOMALOUS" if detection["IsAnomalous"] else "normal"
                        print(f"{name}: {verdict} (confidence {detection['Confidence']:.3f})")
                    else:
                        detail = result["error_detail"]
                        print(f"{name}: error {result['error_code']} {detail['code']}: {detail['message']}")
        for name in sent.values():
            print(f"{name}: no result within {timeout:.0f} s")
    finally:
        await producer.stop()
        await consumer.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--project", required=True)
    parser.add_argument("--model", required=True, help="model version, e.g. 1")
    parser.add_argument("--bootstrap", default=os.environ.get("LOUPE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for results")
    args = parser.parse_args()
    asyncio.run(main(args.folder, args.project, args.model, args.bootstrap, args.timeout))
