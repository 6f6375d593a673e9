"""An Edge Agent client written from the contract alone, the loop AWS's Lookout for Vision edge
samples ran: read an image file, convert it to RGB, send it, print normal/anomalous and the anomaly
classes over 0.01 % of the area. Stubs are generated from the .proto given (grpcio-tools), never
imported from loupe_edge; frames are Pillow + numpy (no OpenCV).

    python edge_client.py --proto edge_agent.proto --socket /tmp/aws.iot.lookoutvision.EdgeAgent.sock \
        --model loupe-line7 [--shared-memory] [--start] IMAGE...

Prints one JSON line per image (and `--start` first starts the model and waits until RUNNING).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import tempfile
import time
from multiprocessing import shared_memory
from pathlib import Path

import grpc
import numpy as np
from grpc_tools import protoc
from PIL import Image


def stubs(proto: Path):
    out = Path(tempfile.mkdtemp(prefix="edge-stubs-"))
    code = protoc.main(["protoc", f"-I{proto.parent}", f"--python_out={out}", f"--grpc_python_out={out}", proto.name])
    if code != 0:
        sys.exit(f"protoc failed on {proto}")
    sys.path.insert(0, str(out))
    stem = proto.stem
    return importlib.import_module(f"{stem}_pb2"), importlib.import_module(f"{stem}_pb2_grpc")


class Segment:
    """One POSIX shared-memory segment the client owns: frames in, masks out."""

    def __init__(self, size: int) -> None:
        self.memory = shared_memory.SharedMemory(create=True, size=size)  # tracked: removed even if we crash

    def close(self) -> None:
        self.memory.close()
        self.memory.unlink()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto", type=Path, required=True)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--shared-memory", action="store_true")
    parser.add_argument("--start", action="store_true")
    parser.add_argument("images", nargs="+", type=Path)
    args = parser.parse_args()
    pb, pb_grpc = stubs(args.proto)
    with grpc.insecure_channel(f"unix://{args.socket}") as channel:
        stub = pb_grpc.EdgeAgentStub(channel)
        if args.start:
            stub.StartModel(pb.StartModelRequest(model_component=args.model))
            deadline = time.monotonic() + 60
            while stub.DescribeModel(pb.DescribeModelRequest(model_component=args.model)).model_description.status != pb.RUNNING:
                if time.monotonic() > deadline:
                    sys.exit("the model did not reach RUNNING in 60 s")
                time.sleep(0.05)
        segment = None
        try:
            for path in args.images:
                with Image.open(path) as image:
                    frame = np.asarray(image.convert("RGB"))
                height, width = frame.shape[:2]
                request = pb.DetectAnomaliesRequest(model_component=args.model)
                if args.shared_memory:
                    size = frame.nbytes
                    if segment is None or segment.memory.size < 2 * size:
                        if segment is not None:
                            segment.close()
                        segment = Segment(2 * size)
                    segment.memory.buf[:size] = frame.tobytes()  # the frame first, the mask after it
                    name = "/" + segment.memory.name
                    request.bitmap.CopyFrom(pb.Bitmap(width=width, height=height, shared_memory_handle=pb.SharedMemoryHandle(
                        name=name, size=size, offset=0)))
                    request.anomaly_mask_params.shared_memory_handle.CopyFrom(
                        pb.SharedMemoryHandle(name=name, size=size, offset=size))
                else:
                    request.bitmap.CopyFrom(pb.Bitmap(width=width, height=height, byte_data=frame.tobytes()))
                result = stub.DetectAnomalies(request).detect_anomaly_result
                mask = b""
                if result.HasField("anomaly_mask"):
                    mask = (bytes(segment.memory.buf[frame.nbytes : 2 * frame.nbytes])
                            if result.anomaly_mask.WhichOneof("data") == "shared_memory_handle" else result.anomaly_mask.byte_data)
                print(json.dumps({
                    "image": path.name, "verdict": "anomalous" if result.is_anomalous else "normal",
                    "confidence": result.confidence,
                    "anomalies": {a.name: [a.pixel_anomaly.total_percentage_area, a.pixel_anomaly.hex_color]
                                  for a in result.anomalies if a.pixel_anomaly.total_percentage_area > 0.0001},
                    "mask": {"via": result.anomaly_mask.WhichOneof("data"), "width": result.anomaly_mask.width,
                             "height": result.anomaly_mask.height, "sha256": hashlib.sha256(mask).hexdigest(),
                             "bytes": len(mask)} if mask else None}), flush=True)
        finally:
            if segment is not None:
                segment.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
