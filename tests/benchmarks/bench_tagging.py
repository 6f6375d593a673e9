"""Image tagging benchmark: the raw model time in-process (classifier + detector), v1.0 and v2
latency through the gateway (HTTP -> gateway -> Kafka -> worker -> Kafka -> gateway), throughput on
one worker, and a sanity table of the top tags for scikit-image's sample photos.

Run: .venv/bin/python tests/benchmarks/bench_tagging.py [--requests 100] [--seconds 15]
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from PIL import Image  # noqa: E402

from bench_control_plane import percentile  # noqa: E402
from helpers import IAM_BODY  # noqa: E402
from loupe_common.settings import Settings  # noqa: E402
from loupe_local.stack import Stack  # noqa: E402

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "cat", "horse", "camera", "coins")


def photo(name: str) -> bytes:
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(getattr(data, name)()).convert("RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def raw_times(runs: int = 40) -> tuple[float, float]:
    """(median ms of Tagger.tag on chelsea, median ms of decode + tag) with all cores."""
    import os

    from loupe_inference.tagger import Tagger
    from loupe_inference.tagging import open_image
    from loupe_models.catalogue import model_dir

    tagger = Tagger.load(model_dir(), os.cpu_count() or 1)
    data = photo("chelsea")
    image = open_image(data)
    tag_ms, full_ms = [], []
    for i in range(runs + 3):
        t0 = time.perf_counter()
        tagger.tag(image)
        t1 = time.perf_counter()
        tagger.tag(open_image(data))
        t2 = time.perf_counter()
        if i >= 3:
            tag_ms.append((t1 - t0) * 1000)
            full_ms.append((t2 - t1) * 1000)
    return statistics.median(tag_ms), statistics.median(full_ms)


def call(client: httpx.Client, token: str, version: str, body: dict) -> httpx.Response:
    path = "/v1.0/image/tagging" if version == "v1" else f"/v2/{Settings().iam_project_id}/image/tagging"
    return client.post(path, json=body, headers={"X-Auth-Token": token}, timeout=60)


def latency(endpoint: str, token: str, version: str, body: dict, requests: int) -> list[float]:
    times = []
    with httpx.Client(base_url=endpoint) as client:
        for i in range(requests + 5):
            t0 = time.perf_counter()
            r = call(client, token, version, body)
            assert r.status_code == 200, r.text
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1000)
    return times


def throughput(endpoint: str, token: str, body: dict, seconds: float, clients: int) -> float:
    done = [0] * clients
    stop = time.monotonic() + seconds

    def run(n: int) -> None:
        with httpx.Client(base_url=endpoint) as client:
            while time.monotonic() < stop:
                if call(client, token, "v2", body).status_code == 200:
                    done[n] += 1

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    tag_ms, full_ms = raw_times()
    print(f"raw model time (chelsea 451x300, all cores): tag {tag_ms:.1f} ms, decode+tag {full_ms:.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.on_free_ports(Path(tmp), extra_env={"LOUPE_TAGGING_RATE_PER_SECOND": "1000",
                                                          "LOUPE_TAGGING_BURST": "1000"})
        stack.start()
        try:
            token = httpx.post(stack.endpoint_url + "/v3/auth/tokens", json=IAM_BODY).headers["x-subject-token"]
            body = {"image": base64.b64encode(photo("chelsea")).decode(), "language": "en"}
            for version in ("v1", "v2"):
                times = latency(stack.endpoint_url, token, version, body, args.requests)
                print(f"{version} through the gateway ({args.requests} sequential): p50 {percentile(times, 0.5):.1f} ms, "
                      f"p95 {percentile(times, 0.95):.1f} ms, p99 {percentile(times, 0.99):.1f} ms")
            for clients in (1, 4):
                rate = throughput(stack.endpoint_url, token, body, args.seconds, clients)
                print(f"throughput, one worker, {clients} concurrent clients: {rate:.1f} images/s")
            print("\nsanity table (v2, en, threshold 10, top 5):")
            with httpx.Client(base_url=stack.endpoint_url) as client:
                for name in PHOTOS:
                    r = call(client, token, "v2", {"image": base64.b64encode(photo(name)).decode(), "language": "en",
                                                   "threshold": 10, "limit": 5})
                    tags = r.json()["result"]["tags"]
                    text = ", ".join(f"{t['tag']} ({t['type']}) {t['confidence']}"
                                     + (f" [{len(t['instances'])} box]" if t["instances"] else "") for t in tags)
                    print(f"  {name:10} {text}")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
