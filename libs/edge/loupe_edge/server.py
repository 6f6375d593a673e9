"""The Edge Agent gRPC service over packaged Loupe models.

Models are the bundles found at start (one per Greengrass component name) and begin STOPPED, as
Lookout's agent did: StartModel loads one in the background (STARTING, then RUNNING or FAILED),
StopModel unloads it before answering. DetectAnomalies takes RGB888 frames in the message or in a
POSIX shared-memory segment and writes the mask back the same way. Detection has admission
control: at most `workers` frames are scored at once and `queue` more may wait; a frame beyond
that gets RESOURCE_EXHAUSTED at once, so a camera loop that outruns the model learns it instead
of seeing its latency grow without bound.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from .bundle import Bundle, BundleError, EdgeModel
from .proto import edge_agent_pb2 as pb
from .proto import edge_agent_pb2_grpc as pb_grpc

log = logging.getLogger("loupe_edge")

MIN_SIDE, MAX_SIDE = 64, 4096  # the contract's bitmap limits
MAX_MESSAGE = MAX_SIDE * MAX_SIDE * 3 + (1 << 20)  # a largest frame by bytes, with room for the rest
SHM_DIR = Path("/dev/shm")  # noqa: S108 - where Linux keeps shm_open segments (clients name them)


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Slot:
    bundle: Bundle
    status: pb.ModelStatus = pb.STOPPED
    message: str = "The model is stopped. Start it with StartModel."
    model: EdgeModel | None = None


def bundles_in(folder: Path) -> dict[str, Bundle]:
    """The bundles in `folder`: the folder itself if it is one, else each sub-folder or .zip that is one
    (a later one with the same component name is refused with a log line, not silently served)."""
    candidates = [folder] if (folder / "manifest.json").exists() or folder.suffix == ".zip" else sorted(
        p for p in folder.iterdir() if (p / "manifest.json").exists() or p.suffix == ".zip")
    found: dict[str, Bundle] = {}
    for path in candidates:
        try:
            bundle = Bundle.open(path)
        except BundleError as error:
            log.error("skipped: %s", error)
            continue
        if bundle.component in found:
            log.error("skipped %s: component %s is already served from %s", path, bundle.component,
                      found[bundle.component].source)
            continue
        found[bundle.component] = bundle
    return found


def available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class EdgeAgent(pb_grpc.EdgeAgentServicer):
    def __init__(self, bundles: dict[str, Bundle], *, workers: int = 1, queue: int = 2,
                 threads: int = 1) -> None:
        self.slots = {name: Slot(bundle) for name, bundle in bundles.items()}
        self.lock = threading.Lock()
        self.threads = threads
        self.admitted = threading.BoundedSemaphore(workers + queue)  # scored or waiting
        self.scoring = threading.BoundedSemaphore(workers)

    # --- lifecycle -------------------------------------------------------------------------------

    def _slot(self, name: str) -> Slot:
        if not name:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "model_component is required")
        slot = self.slots.get(name)
        if slot is None:
            raise Refused(grpc.StatusCode.NOT_FOUND, f"no model component named {name!r} is installed")
        return slot

    def start(self, name: str) -> pb.ModelStatus:
        with self.lock:
            slot = self._slot(name)
            if slot.status not in (pb.STOPPED, pb.FAILED):
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION,
                              f"{name} is {pb.ModelStatus.Name(slot.status)}; "
                              "only a STOPPED or FAILED model starts")
            free = available_memory()
            needed = 4 * slot.bundle.onnx_bytes + (64 << 20)  # the graph, its arena and a frame's buffers
            if free is not None and free < needed:
                raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"{name} needs about {needed >> 20} MiB and {free >> 20} MiB are available")
            slot.status, slot.message = pb.STARTING, "Loading the model."
        threading.Thread(target=self._load, args=(slot,), name=f"load-{name}", daemon=True).start()
        return pb.STARTING

    def _load(self, slot: Slot) -> None:
        try:
            model = EdgeModel(slot.bundle, self.threads)
        except Exception as error:  # any failure to load is the model's state, not the server's
            log.exception("could not load %s", slot.bundle.component)
            with self.lock:
                slot.status, slot.message = pb.FAILED, f"The model could not be loaded: {error}"
            return
        with self.lock:
            if slot.status == pb.STARTING:
                slot.model, slot.status, slot.message = model, pb.RUNNING, "The model is running."

    def stop(self, name: str) -> pb.ModelStatus:
        with self.lock:
            slot = self._slot(name)
            if slot.status != pb.RUNNING:
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION,
                              f"{name} is {pb.ModelStatus.Name(slot.status)}; only a RUNNING model stops")
            slot.status, slot.message = pb.STOPPING, "Stopping."
            slot.model = None  # frames being scored keep their reference and finish
            slot.status, slot.message = pb.STOPPED, "The model is stopped. Start it with StartModel."
        return pb.STOPPED

    def describe(self, name: str) -> pb.ModelDescription:
        with self.lock:
            slot = self._slot(name)
            return pb.ModelDescription(model_component=name, lookout_vision_model_arn=slot.bundle.model_arn,
                                       status=slot.status, status_message=slot.message)

    # --- detection -------------------------------------------------------------------------------

    def detect(self, request: pb.DetectAnomaliesRequest) -> pb.DetectAnomaliesResponse:
        with self.lock:
            slot = self._slot(request.model_component)
            model = slot.model
            if slot.status != pb.RUNNING or model is None:
                raise Refused(grpc.StatusCode.FAILED_PRECONDITION,
                              f"{request.model_component} is {pb.ModelStatus.Name(slot.status)}, not RUNNING")
        frame = read_bitmap(request.bitmap)
        height, width = frame.shape[:2]
        mask_handle = request.anomaly_mask_params.shared_memory_handle if (
            request.HasField("anomaly_mask_params")
            and request.anomaly_mask_params.HasField("shared_memory_handle")) else None
        if mask_handle is not None:
            check_handle(mask_handle, width * height * 3, "anomaly_mask_params.shared_memory_handle")
        if not self.admitted.acquire(blocking=False):
            raise Refused(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          "the runtime is scoring and queueing as many frames as it can; "
                          "send this frame again later")
        try:
            with self.scoring:
                detection = model.detect(frame)
        finally:
            self.admitted.release()
        result = pb.DetectAnomalyResult(is_anomalous=detection.is_anomalous, confidence=detection.confidence)
        if detection.kind == "segmentation":  # as in Lookout: classification models answer without a mask
            for name, color, share in detection.anomalies:
                result.anomalies.add(name=name, pixel_anomaly=pb.PixelAnomaly(total_percentage_area=share,
                                                                              hex_color=color))
            mask = detection.mask_rgb(model.colors, height, width)
            if mask_handle is not None:
                write_segment(mask_handle, mask)
                result.anomaly_mask.CopyFrom(pb.Bitmap(width=width, height=height,
                                                       shared_memory_handle=mask_handle))
            else:
                result.anomaly_mask.CopyFrom(pb.Bitmap(width=width, height=height, byte_data=mask.tobytes()))
        return pb.DetectAnomaliesResponse(detect_anomaly_result=result)

    # --- the RPCs --------------------------------------------------------------------------------

    def DetectAnomalies(self, request, context):  # noqa: N802 (the contract's names)
        return _answer(context, lambda: self.detect(request))

    def StartModel(self, request, context):  # noqa: N802
        return _answer(context, lambda: pb.StartModelResponse(status=self.start(request.model_component)))

    def StopModel(self, request, context):  # noqa: N802
        return _answer(context, lambda: pb.StopModelResponse(status=self.stop(request.model_component)))

    def DescribeModel(self, request, context):  # noqa: N802
        return _answer(context, lambda: pb.DescribeModelResponse(
            model_description=self.describe(request.model_component)))

    def ListModels(self, request, context):  # noqa: N802
        def listing() -> pb.ListModelsResponse:
            with self.lock:
                return pb.ListModelsResponse(models=[
                    pb.ModelMetadata(model_component=name, lookout_vision_model_arn=slot.bundle.model_arn,
                                     status=slot.status, status_message=slot.message)
                    for name, slot in sorted(self.slots.items())])
        return _answer(context, listing)


def _answer(context: grpc.ServicerContext, work: Callable):
    try:
        return work()
    except Refused as refused:
        context.abort(refused.code, str(refused))
    except Exception:  # the caller gets INTERNAL and the log the trace; the server goes on
        log.exception("request failed")
        context.abort(grpc.StatusCode.INTERNAL, "the edge runtime failed on this request; see its log")


# --- bitmaps and shared memory -----------------------------------------------------------------------

def read_bitmap(bitmap: pb.Bitmap) -> np.ndarray:
    """The frame as a (height, width, 3) uint8 array, from the message or a shared-memory segment."""
    width, height = bitmap.width, bitmap.height
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                      f"bitmap is {width}x{height}; width and height must be {MIN_SIDE} to {MAX_SIDE}")
    expected = width * height * 3
    kind = bitmap.WhichOneof("data")
    if kind == "byte_data":
        if len(bitmap.byte_data) != expected:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"byte_data has {len(bitmap.byte_data)} bytes; "
                          f"a {width}x{height} RGB888 bitmap has {expected}")
        return np.frombuffer(bitmap.byte_data, np.uint8).reshape(height, width, 3)
    if kind == "shared_memory_handle":
        return read_segment(bitmap.shared_memory_handle, expected).reshape(height, width, 3)
    raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "bitmap has neither byte_data nor shared_memory_handle")


def _segment_path(handle: pb.SharedMemoryHandle, what: str) -> Path:
    name = handle.name[1:] if handle.name.startswith("/") else handle.name  # shm_open names start with one /
    if not name or "/" in name or name in (".", ".."):
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                      f"{what}.name {handle.name!r} is not a shared-memory segment name")
    return SHM_DIR / name


def _open_segment(handle: pb.SharedMemoryHandle, expected: int, what: str, flags: int) -> int:
    """A descriptor of the caller's segment, once the handle fits in it (symlinks are not followed)."""
    path = _segment_path(handle, what)
    if handle.size < expected:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                      f"{what}.size is {handle.size}; the bitmap needs {expected} bytes")
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW)
    except OSError:
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                      f"{what}: no shared-memory segment {handle.name!r}") from None
    segment = os.fstat(fd).st_size
    if handle.offset + handle.size > segment:
        os.close(fd)
        raise Refused(grpc.StatusCode.INVALID_ARGUMENT,
                      f"{what}: offset {handle.offset} + size {handle.size} "
                      f"runs past the end of the {segment}-byte segment {handle.name!r}")
    return fd


def check_handle(handle: pb.SharedMemoryHandle, expected: int, what: str) -> None:
    os.close(_open_segment(handle, expected, what, os.O_RDWR))


def read_segment(handle: pb.SharedMemoryHandle, expected: int) -> np.ndarray:
    fd = _open_segment(handle, expected, "bitmap.shared_memory_handle", os.O_RDONLY)
    try:
        with mmap.mmap(fd, 0, prot=mmap.PROT_READ) as mapped:
            return np.frombuffer(mapped, np.uint8, count=expected, offset=handle.offset).copy()
    finally:
        os.close(fd)


def write_segment(handle: pb.SharedMemoryHandle, data: np.ndarray) -> None:
    fd = _open_segment(handle, data.nbytes, "anomaly_mask_params.shared_memory_handle", os.O_RDWR)
    try:
        with mmap.mmap(fd, 0) as mapped:
            mapped[handle.offset : handle.offset + data.nbytes] = data.tobytes()
    finally:
        os.close(fd)


# --- the server ------------------------------------------------------------------------------------

def serve(agent: EdgeAgent, address: str, *, workers: int, queue: int) -> grpc.Server:
    """A started gRPC server for `agent` on `address` (unix:///path or host:port)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers + queue + 4, thread_name_prefix="edge-rpc"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                 ("grpc.max_send_message_length", MAX_MESSAGE)],
        # Past this many RPCs in progress, gRPC itself answers RESOURCE_EXHAUSTED.
        maximum_concurrent_rpcs=workers + queue + 16,
    )
    pb_grpc.add_EdgeAgentServicer_to_server(agent, server)
    server.add_insecure_port(address)
    server.start()
    return server
