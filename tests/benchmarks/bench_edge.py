"""Edge runtime benchmark: DetectAnomalies over the Edge Agent gRPC socket for a 1024x768 RGB888
frame, by bytes in the message and by POSIX shared memory (mask written back to the segment):
p50/p99 latency, sequential and two-client frames per second, what a third client beyond the queue
gets, and the runtime's RSS with one and with two models running.

Run: .venv/bin/python tests/benchmarks/bench_edge.py [--frames 200] [--threads 2]
Trains a segmentation model in-process at the service's defaults (256 px input, Lite0 backbone,
pattern images with colour masks, all at the camera's 1024x768), writes it as a bundle the way a packaging job does, and serves
it with `python -m loupe_edge serve` in its own process. Half the frames are defective (their
masks and classes are the costlier path). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import shared_memory
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

import grpc  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench_control_plane import percentile  # noqa: E402
from helpers import pattern_png  # noqa: E402
from loupe_edge.bundle import BUNDLE_FORMAT, runtime_files  # noqa: E402
from loupe_edge.proto import edge_agent_pb2 as pb  # noqa: E402
from loupe_edge.proto import edge_agent_pb2_grpc as pb_grpc  # noqa: E402

WIDTH, HEIGHT = 1024, 768


def train_bundle(folder: Path, components: list[str]) -> None:
    """One trained model written as a bundle per component name (same graph, separate sessions)."""
    from test_segmentation_models import COLOR_MAP, Blobs, defect_png

    from loupe_training.patchcore.detector import DetectorConfig
    from loupe_training.trainer import train

    blobs = Blobs()
    normal = [blobs.entry(f"n{i}", 0, as_frame(pattern_png(i))) for i in range(20)]
    defects = []
    for i in range(12):
        image, mask = defect_png(100 + i, "scratch" if i % 2 else "dent")
        defects.append(blobs.entry(f"d{i}", 1, as_frame(image), as_frame(mask, Image.Resampling.NEAREST), COLOR_MAP))
    test = [blobs.entry(f"t{i}", 0, as_frame(pattern_png(300 + i))) for i in range(6)] + defects[6:]
    output = train(config=DetectorConfig(), train_entries=normal + defects[:6], test_entries=test,
                   fetch=blobs.__getitem__, progress=lambda *_: None, title="bench")
    files = {"model/model.onnx": output.model_onnx, "model/model.json": json.dumps(output.sidecar).encode(),
             **runtime_files()}
    for component in components:
        root = folder / component
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        manifest = {"format": BUNDLE_FORMAT, "component": {"name": component, "version": "1.0.0"},
                    "model_arn": f"arn:aws:lookoutvision:us-east-1:123456789012:model/bench/{component}",
                    "files": {p: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for p, d in files.items()}}
        (root / "manifest.json").write_text(json.dumps(manifest))


def as_frame(png: bytes, resample: Image.Resampling = Image.Resampling.BILINEAR) -> bytes:
    """A pattern image (or its mask) at the camera's 1024x768, as the model is trained and asked."""
    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.convert("RGB").resize((WIDTH, HEIGHT), resample).save(out, "PNG")
        return out.getvalue()


def frames() -> list[np.ndarray]:
    out = []
    for i in range(8):
        with Image.open(io.BytesIO(as_frame(pattern_png(500 + i, defect=i % 2 == 1)))) as image:
            out.append(np.asarray(image.convert("RGB")))
    return out


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(stub, name: str) -> None:
    stub.StartModel(pb.StartModelRequest(model_component=name))
    while stub.DescribeModel(pb.DescribeModelRequest(model_component=name)).model_description.status != pb.RUNNING:
        time.sleep(0.05)


class Sender:
    """One client: frames by bytes or through its own shared-memory segment (frame, then mask)."""

    def __init__(self, stub, model: str, shared: bool) -> None:
        self.stub, self.model, self.shared = stub, model, shared
        self.segment = None
        if shared:
            self.segment = shared_memory.SharedMemory(create=True, size=2 * WIDTH * HEIGHT * 3)

    def send(self, frame: np.ndarray):
        size = frame.nbytes
        request = pb.DetectAnomaliesRequest(model_component=self.model)
        if self.segment is None:
            request.bitmap.CopyFrom(pb.Bitmap(width=WIDTH, height=HEIGHT, byte_data=frame.tobytes()))
        else:
            self.segment.buf[:size] = frame.reshape(-1)
            name = "/" + self.segment.name
            request.bitmap.CopyFrom(pb.Bitmap(width=WIDTH, height=HEIGHT,
                                              shared_memory_handle=pb.SharedMemoryHandle(name=name, size=size)))
            request.anomaly_mask_params.shared_memory_handle.CopyFrom(
                pb.SharedMemoryHandle(name=name, size=size, offset=size))
        return self.stub.DetectAnomalies(request).detect_anomaly_result

    def close(self) -> None:
        if self.segment is not None:
            self.segment.close()
            self.segment.unlink()


def latency(stub, model: str, shared: bool, images: list[np.ndarray], count: int) -> dict:
    sender = Sender(stub, model, shared)
    try:
        for frame in images[:2]:
            sender.send(frame)  # warm-up
        times: dict[bool, list[float]] = {False: [], True: []}
        began = time.perf_counter()
        for i in range(count):
            t = time.perf_counter()
            flagged = sender.send(images[i % len(images)]).is_anomalous
            times[flagged].append((time.perf_counter() - t) * 1000)
        wall = time.perf_counter() - began
    finally:
        sender.close()
    every = times[False] + times[True]
    return {"p50": statistics.median(every), "p99": percentile(every, 0.99), "fps": count / wall,
            "flagged": len(times[True]), "normal_p50": statistics.median(times[False] or [float("nan")]),
            "flagged_p50": statistics.median(times[True] or [float("nan")])}


def concurrent(stub, model: str, images: list[np.ndarray], clients: int, seconds: float) -> dict:
    """`clients` shared-memory clients sending back to back: frames answered per second, refusals."""
    done, refused = [0] * clients, [0] * clients
    stop = time.monotonic() + seconds

    def run(k: int) -> None:
        sender = Sender(stub, model, True)
        try:
            i = k
            while time.monotonic() < stop:
                try:
                    sender.send(images[i % len(images)])
                    done[k] += 1
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                        raise
                    refused[k] += 1
                    time.sleep(0.005)
                i += 1
        finally:
            sender.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"fps": sum(done) / seconds, "refused": sum(refused)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="onnxruntime threads per frame")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; frame {WIDTH}x{HEIGHT} RGB888 ({WIDTH * HEIGHT * 3} bytes)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        train_bundle(folder / "models", ["bench-a", "bench-b"])
        print(f"trained and bundled in {time.perf_counter() - t:.0f} s")
        socket = folder / "edge.sock"
        runtime = subprocess.Popen([sys.executable, "-m", "loupe_edge", "serve", "--models", str(folder / "models"),
                                    "--socket", str(socket), "--threads", str(args.threads), "--workers", "1",
                                    "--queue", "2"], stderr=subprocess.DEVNULL)
        try:
            while not socket.exists():
                time.sleep(0.05)
            idle = rss_mb(runtime.pid)
            with grpc.insecure_channel(f"unix://{socket}", options=[
                    ("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]) as channel:
                stub = pb_grpc.EdgeAgentStub(channel)
                start(stub, "bench-a")
                images = frames()
                by_bytes = latency(stub, "bench-a", False, images, args.frames)
                by_shm = latency(stub, "bench-a", True, images, args.frames)
                one = rss_mb(runtime.pid)
                two_clients = concurrent(stub, "bench-a", images, 2, args.seconds)
                four_clients = concurrent(stub, "bench-a", images, 4, args.seconds)
                start(stub, "bench-b")
                latency(stub, "bench-b", True, images, 20)
                two = rss_mb(runtime.pid)
        finally:
            runtime.terminate()
            runtime.wait(30)
    print(f"onnxruntime threads per frame: {args.threads}; workers 1, queue 2; {args.frames} frames each, "
          f"half defective")
    for label, row in (("by bytes", by_bytes), ("by shared memory", by_shm)):
        print(f"DetectAnomalies {label:17s} p50 {row['p50']:6.1f} ms  p99 {row['p99']:6.1f} ms  "
              f"{row['fps']:5.1f} frames/s sequential  ({row['flagged']} flagged; p50 normal "
              f"{row['normal_p50']:.1f} ms, flagged {row['flagged_p50']:.1f} ms)")
    print(f"2 clients back to back (shared memory): {two_clients['fps']:.1f} frames/s, "
          f"{two_clients['refused']} RESOURCE_EXHAUSTED")
    print(f"4 clients back to back (shared memory): {four_clients['fps']:.1f} frames/s, "
          f"{four_clients['refused']} RESOURCE_EXHAUSTED answers (1 frame scored + 2 queued admitted at a time)")
    print(f"runtime RSS: {idle:.0f} MiB serving nothing, {one:.0f} MiB with one model running, "
          f"{two:.0f} MiB with two")


if __name__ == "__main__":
    main()
