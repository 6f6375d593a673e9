"""Inference benchmark: the raw model time in-process, DetectAnomalies end to end (HTTP -> gateway ->
Kafka -> worker -> Kafka -> gateway), throughput for DetectAnomalies and the ingest topic with
1 and 2 workers, and each worker's peak RSS.

Run: .venv/bin/python tests/benchmarks/bench_inference.py [--requests 300] [--seconds 15] [--ingest 400]
Each configuration gets a fresh local system, trains a model (pattern images, 256 px model input)
and hosts it on as many units as there are workers. Images are 224x224 PNGs.
Prints figures; asserts nothing (targets are judged by reading them).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.structs import TopicPartition  # noqa: E402
from PIL import Image  # noqa: E402

from bench_control_plane import peak_rss_mb, percentile  # noqa: E402
from helpers import OUTPUT, fill, make_client, pattern_png, server_timing, wait_model, wait_status  # noqa: E402
from loupe_local.stack import Stack  # noqa: E402

PROJECT = "bench"


def images(count: int) -> list[bytes]:
    """224x224 PNGs with the training images' framing (160 px patterns scaled up); every 4th defective."""
    out = []
    for i in range(count):
        image = Image.open(io.BytesIO(pattern_png(20000 + i, defect=i % 4 == 0))).resize((224, 224))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def raw_model_time(stack: Stack, threads: int, sample: bytes, runs: int = 100) -> tuple[float, float]:
    """(median ms of session.run alone, median ms of the worker's whole detect: decode, run, mask)."""
    from loupe_inference.runtime import ModelRuntime
    from loupe_inference.scoring import detect
    from loupe_models.preprocess import to_pixels

    directory = stack.data_dir / "blobs" / "models" / PROJECT / "1"
    runtime = ModelRuntime(directory / "model.onnx", json.loads((directory / "model.json").read_text()), threads)
    pixels = to_pixels(Image.open(io.BytesIO(sample)), runtime.size)[0][None]
    run, full = [], []
    for i in range(runs + 5):
        t0 = time.perf_counter()
        runtime.session.run(["anomaly_map"], {"pixels": pixels})
        t1 = time.perf_counter()
        detect(runtime, sample, content_type="image/png", threshold=None, with_mask=True)
        t2 = time.perf_counter()
        if i >= 5:
            run.append((t1 - t0) * 1000)
            full.append((t2 - t1) * 1000)
    return statistics.median(run), statistics.median(full)


def latency(client, data: list[bytes], requests: int) -> tuple[list[float], list[dict[str, float]]]:
    """Client-side milliseconds of each call, and each call's Server-Timing."""
    out, timings = [], []
    for i in range(requests):
        t0 = time.perf_counter()
        response = client.detect_anomalies(ProjectName=PROJECT, ModelVersion="1", Body=data[i % len(data)],
                                           ContentType="image/png")
        out.append((time.perf_counter() - t0) * 1000)
        timings.append(server_timing(response))
    return out, timings


def breakdown(total: list[float], timings: list[dict[str, float]]) -> str:
    """Medians of where a call's time goes: the worker; the two Kafka hops (gateway round trip
    minus the worker); the client, HTTP and the gateway's own work (the rest)."""
    worker = [t["inference"] for t in timings]
    hops = [t["roundtrip"] - t["inference"] for t in timings]
    rest = [c - t["roundtrip"] for c, t in zip(total, timings, strict=True)]
    return (f"worker {statistics.median(worker):.1f} ms, Kafka hops {statistics.median(hops):.1f} ms, "
            f"client + HTTP + gateway {statistics.median(rest):.1f} ms")


def throughput(endpoint: str, data: list[bytes], seconds: float, clients: int) -> float:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(n: int) -> None:
        client = make_client("lookoutvision", endpoint)
        i = n
        while time.monotonic() < stop:
            client.detect_anomalies(ProjectName=PROJECT, ModelVersion="1", Body=data[i % len(data)],
                                    ContentType="image/png")
            done[n] += 1
            i += clients

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


async def ingest_throughput(bootstrap: str, data: list[bytes], count: int) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024, linger_ms=5)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20)
    await producer.start()
    await consumer.start()
    await consumer._client.force_metadata_update()  # noqa: SLF001
    parts = [TopicPartition("loupe.ingest.results", p) for p in consumer.partitions_for_topic("loupe.ingest.results")]
    consumer.assign(parts)
    for tp, end in (await consumer.end_offsets(parts)).items():
        consumer.seek(tp, end)
    headers = [("loupe-project", PROJECT.encode()), ("loupe-model-version", b"1"), ("content-type", b"image/png")]
    started = time.perf_counter()
    sends = [await producer.send("loupe.ingest", data[i % len(data)], headers=headers) for i in range(count)]
    await asyncio.gather(*sends)
    seen = 0
    while seen < count:
        for records in (await consumer.getmany(timeout_ms=1000)).values():
            seen += len(records)
    elapsed = time.perf_counter() - started
    await producer.stop()
    await consumer.stop()
    return count / elapsed


def run_configuration(workers: int, threads: int, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.on_free_ports(Path(tmp), inference_workers=workers,
                                    extra_env={"LOUPE_INFERENCE_THREADS": str(threads),
                                               "LOUPE_TAGGING_ENABLED": str(args.tagging == "on").lower()})
        with stack:
            client = make_client("lookoutvision", stack.endpoint_url)
            client.create_project(ProjectName=PROJECT)
            fill(client, stack.data_dir / "s3", PROJECT, "train", normal=14, anomalous=0, seed=0)
            client.create_model(ProjectName=PROJECT, OutputConfig=OUTPUT)
            assert wait_model(client, PROJECT)["Status"] == "TRAINED"
            client.start_model(ProjectName=PROJECT, ModelVersion="1", MinInferenceUnits=workers)
            wait_status(client, PROJECT, "1", "HOSTED")
            time.sleep(2)  # let every unit finish joining
            data = images(32)
            raw_run, raw_full = raw_model_time(stack, threads, data[1])
            latency(client, data, 30)  # warm-up
            lat, timings = latency(client, data, args.requests)
            p50, p95, p99 = (percentile(lat, q) for q in (0.5, 0.95, 0.99))
            rate = throughput(stack.endpoint_url, data, args.seconds, clients=4 * workers)
            ingest_rate = asyncio.run(ingest_throughput(stack.kafka_bootstrap, data, args.ingest))
            rss = {name: peak_rss_mb(stack.processes[name].pid) for name in stack.worker_names()}
            print(f"\n== {workers} worker(s) x {threads} onnxruntime thread(s), 224x224 PNG, model input 256 px, "
                  f"tagging models {args.tagging} ==")
            print(f"raw model (in-process): session.run p50 {raw_run:.1f} ms; whole detect (decode+run+mask) "
                  f"{raw_full:.1f} ms")
            print(f"DetectAnomalies via boto3, sequential ({args.requests}): p50 {p50:.1f} ms  p95 {p95:.1f} ms  "
                  f"p99 {p99:.1f} ms  (p50 - raw detect = {p50 - raw_full:+.1f} ms; p99 / raw detect = "
                  f"{p99 / raw_full:.2f}x)")
            print(f"  of which (medians): {breakdown(lat, timings)}")
            print(f"DetectAnomalies throughput, {4 * workers} concurrent clients for {args.seconds:.0f} s: "
                  f"{rate:.1f} images/s")
            print(f"ingest throughput ({args.ingest} images, produce -> all results read): {ingest_rate:.1f} images/s")
            print("peak RSS per worker: " + ", ".join(f"{n} {mb:.0f} MB" for n, mb in rss.items()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--ingest", type=int, default=400)
    parser.add_argument("--configs", default="1x2,1x1,2x1", help="workers x threads, comma separated")
    parser.add_argument("--tagging", choices=("on", "off"), default="on",
                        help="whether the workers also load the image tagging models (LOUPE_TAGGING_ENABLED)")
    args = parser.parse_args()
    for config in args.configs.split(","):
        workers, threads = (int(x) for x in config.split("x"))
        run_configuration(workers, threads, args)


if __name__ == "__main__":
    main()
