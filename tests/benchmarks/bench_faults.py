"""Fault benchmark: the longer run of tests/integration/test_faults.py, with figures.

On a stack of its own with a hosted model, a flow definition, a reviewer and an open human loop,
under mixed load (DescribeProject, DescribeModel and DetectAnomalies each in a loop of its own,
images on the ingest topic): each service is killed with SIGKILL and restarted the way `make run`'s
supervisor restarts it, --rounds times; then the broker is killed, left down for --broker-down
seconds and restarted as `make run` restarts it (empty, with the services), --rounds times; then the whole system is stopped and started.
For each fault it prints the longest time callers waited between two answers (DetectAnomalies,
DescribeProject), the seconds until the state and detection were back, how many calls failed,
and the ingest accounting (images without a result, duplicated results).

Run: .venv/bin/python tests/benchmarks/bench_faults.py [--rounds 3] [--broker-down 10]
Prints figures; asserts nothing except that the state came back (otherwise it stops and says so).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fault_tools import PROJECT, SERVICES, Load, build_world, snapshot, wait_until  # noqa: E402
from helpers import IngestStream, ingest_headers, pattern_png  # noqa: E402
from loupe_local.stack import Stack  # noqa: E402

IMAGES = [pattern_png(9600 + i) for i in range(10)]


def detection_back(stack, world) -> bool:
    return bool(world.lookout.detect_anomalies(ProjectName=PROJECT, ModelVersion="1", Body=IMAGES[0],
                                               ContentType="image/png"))


def one_fault(stack, world, before: dict, fault, restart, *, broker: bool = False) -> dict:
    """Run one fault under load with ingest traffic around it; the figures of that fault.
    `broker`: the fault restarts the broker, whose log is memory: the images sent before it are
    answered before the kill (what the broker loses is documented, not measured here) and the
    images after it go through a new stream on the new broker."""

    last: list[dict] = [{}]

    def recovered() -> bool:
        last[0] = snapshot(stack, world)
        return last[0] == before and detection_back(stack, world)

    async def send(stream: IngestStream, prefix: str) -> None:
        for i in range(20):
            await stream.send(f"{prefix}{i}", IMAGES[i % 10], ingest_headers(PROJECT, f"{prefix}{i}"))

    async def fault_and_recovery() -> float:
        await asyncio.to_thread(fault)
        await asyncio.to_thread(restart)
        try:
            return await asyncio.to_thread(wait_until, recovered, 60)
        except AssertionError:
            changed = {k: (before[k], last[0].get(k)) for k in before if last[0].get(k) != before[k]}
            raise AssertionError(f"not back after 60 s; still different: {changed}") from None

    async def traffic() -> tuple[list[IngestStream], float]:
        async with IngestStream(stack.kafka_bootstrap) as stream:
            await send(stream, "b")
            if not broker:
                back = await fault_and_recovery()
                await send(stream, "a")
                await stream.collect(timeout=120)
                return [stream], back
            await stream.collect(timeout=60)
        back = await fault_and_recovery()
        async with IngestStream(stack.kafka_bootstrap) as after:
            await send(after, "a")
            await after.collect(timeout=120)
        return [stream, after], back

    with Load(stack) as load:
        time.sleep(1.0)
        streams, back = asyncio.run(traffic())
        time.sleep(1.0)
    for stream in streams:
        for position, results in stream.results.items():
            if len(results) > 1:  # say which workers answered twice, for whoever looks into it
                print(f"duplicated: ingest {position} ({stream.sent.get(position, 'sent by an earlier round')}) "
                      f"answered by {[r.get('worker') for r in results]}", flush=True)
    return {
        "detect_gap": load.gap("DetectAnomalies"),
        "control_gap": load.gap("DescribeProject"),
        "back_after_restart": back,
        "failed": sum(not ok for _, _, ok, _ in load.calls),
        "calls": len(load.calls),
        "missing": sum(len(set(s.sent) - set(s.results)) for s in streams),
        "duplicated": sum(1 for s in streams for r in s.results.values() if len(r) > 1),
    }


def kill(stack, name: str):
    def run() -> None:
        proc = stack.processes[name]
        proc.kill()
        proc.wait(10)
    return run


def restart_service(stack, name: str):
    def run() -> None:
        time.sleep(1.0)  # the supervisor's first backoff
        stack.restart(name)
        stack.wait_ready([name], 90)
    return run


def broker_outage(stack, down: float):
    def run() -> None:
        time.sleep(down)
        stack.restart("kafka")  # as make run's supervisor does (the services restart with it)
    return run


def summary(name: str, rounds: list[dict]) -> str:
    def med(key: str) -> str:
        return f"{statistics.median(r[key] for r in rounds):.1f}"

    def top(key: str) -> str:
        return f"{max(r[key] for r in rounds):.1f}"

    return (f"| {name} | {len(rounds)} | {med('detect_gap')} / {top('detect_gap')} | "
            f"{med('control_gap')} / {top('control_gap')} | {med('back_after_restart')} | "
            f"{sum(r['failed'] for r in rounds)} of {sum(r['calls'] for r in rounds)} | "
            f"{sum(r['missing'] for r in rounds)} | {sum(r['duplicated'] for r in rounds)} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--broker-down", type=float, default=10.0)
    parser.add_argument("--services", default=",".join(SERVICES), help="which services to kill (comma-separated; "
                        "empty: none)")
    parser.add_argument("--no-broker", action="store_true", help="skip the broker outages")
    parser.add_argument("--data-dir", type=Path, help="keep the stack's data and logs here")
    args = parser.parse_args()
    lines = ["| fault | rounds | DetectAnomalies longest wait, s (median / max) | DescribeProject longest wait, s "
             "(median / max) | state + detection back after the restarted part was ready, s (median) | calls failed | "
             "ingest images without a result | duplicated results |", "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack.on_free_ports(args.data_dir or Path(tmp), extra_env={"LOUPE_REQUEST_TIMEOUT_SECONDS": "8"})
        with stack:
            world = build_world(stack)
            before = snapshot(stack, world)
            for name in [n for n in args.services.split(",") if n]:
                rounds = [one_fault(stack, world, before, kill(stack, name), restart_service(stack, name))
                          for _ in range(args.rounds)]
                lines.append(summary(f"`kill -9` {name}", rounds))
                print(lines[-1], flush=True)
            if not args.no_broker:
                rounds = [one_fault(stack, world, before, kill(stack, "kafka"), broker_outage(stack, args.broker_down),
                                    broker=True) for _ in range(args.rounds)]
                lines.append(summary(f"broker killed, down {args.broker_down:.0f} s, restarted with the services",
                                     rounds))
                print(lines[-1], flush=True)
            started = time.monotonic()
            stack.stop()
            stack.start()
            ready = time.monotonic() - started
            back = wait_until(lambda: snapshot(stack, world) == before and detection_back(stack, world), 60)
    print("\n".join(lines))
    print(f"make run stopped and started again: ready in {ready:.1f} s, state and detection back "
          f"{back:.1f} s later")


if __name__ == "__main__":
    main()
