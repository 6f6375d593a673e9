"""Control-plane benchmark: how long the local system takes to be ready, DescribeProject (a read)
and TagResource (a write) latency through HTTP -> gateway -> Kafka -> dataset service -> Kafka ->
gateway.

Run: .venv/bin/python tests/benchmarks/bench_control_plane.py [--requests 1000]
     LOUPE_EMBEDDED_STORE_DURABLE=false ... to compare with the memory-only embedded store
Prints figures; asserts nothing (targets are judged by reading them).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import make_client  # noqa: E402
from loupe_local.stack import Stack  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=3, help="how many cold starts to time")
    args = parser.parse_args()

    ready_times = []
    for _ in range(args.starts - 1):
        with tempfile.TemporaryDirectory() as tmp:
            stack = Stack.on_free_ports(Path(tmp))
            started = time.perf_counter()
            with stack:
                ready_times.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.on_free_ports(Path(tmp))
        started = time.perf_counter()
        with stack:
            ready_times.append(time.perf_counter() - started)
            client = make_client("lookoutvision", stack.endpoint_url)
            client.create_project(ProjectName="bench")
            for _ in range(50):  # warm up connections and code paths
                client.describe_project(ProjectName="bench")
            latencies = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                client.describe_project(ProjectName="bench")
                latencies.append((time.perf_counter() - t0) * 1000)
            arn = client.describe_project(ProjectName="bench")["ProjectDescription"]["ProjectArn"]
            writes = []
            for i in range(args.requests):
                t0 = time.perf_counter()
                client.tag_resource(ResourceArn=arn, Tags=[{"Key": f"k{i % 40}", "Value": str(i)}])
                writes.append((time.perf_counter() - t0) * 1000)
            rss = {name: peak_rss_mb(proc.pid) for name, proc in stack.processes.items()}

    print(f"ready time (start of broker -> every service and the gateway ready), {len(ready_times)} starts:")
    print(f"  min {min(ready_times):.2f} s   median {statistics.median(ready_times):.2f} s   max {max(ready_times):.2f} s")
    print(f"DescribeProject via boto3 (SigV4 signing + HTTP + gateway + Kafka round trip), n={len(latencies)}:")
    print(
        f"  p50 {percentile(latencies, 0.50):.2f} ms   p95 {percentile(latencies, 0.95):.2f} ms   "
        f"p99 {percentile(latencies, 0.99):.2f} ms   mean {statistics.fmean(latencies):.2f} ms   "
        f"throughput (sequential) {1000 / statistics.fmean(latencies):.0f} req/s"
    )
    print(f"TagResource via boto3 (a write to the dataset service's store), n={len(writes)}:")
    print(f"  p50 {percentile(writes, 0.50):.2f} ms   p95 {percentile(writes, 0.95):.2f} ms   "
          f"p99 {percentile(writes, 0.99):.2f} ms")
    print("peak RSS per process (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items()))


if __name__ == "__main__":
    main()
