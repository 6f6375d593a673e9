"""loupe-edge in-process: a bundle scores images exactly as the hosted model does (same scores to
1e-4, same verdicts, masks and classes), and the Edge Agent service's lifecycle, limits and status
codes over a real gRPC Unix socket (the runtime's own stubs; tests/clients/edge_client.py is the
client written from the contract alone)."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time

import grpc
import numpy as np
import pytest
from PIL import Image

from helpers import pattern_png
from loupe_edge.bundle import BUNDLE_FORMAT, Bundle, BundleError, EdgeModel
from loupe_edge.proto import edge_agent_pb2 as pb
from loupe_edge.proto import edge_agent_pb2_grpc as pb_grpc
from loupe_edge.server import EdgeAgent, serve
from test_segmentation_models import defect_png, trained

SHAPES = [(160, 160), (400, 300), (300, 700), (90, 500), (1024, 768), (64, 64)]


def write_bundle(folder, output, component: str = "loupe-tiles") -> Bundle:
    files = {"model/model.onnx": output.model_onnx, "model/model.json": json.dumps(output.sidecar).encode()}
    for path, data in files.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    manifest = {"format": BUNDLE_FORMAT, "component": {"name": component, "version": "1.0.0"},
                "model_arn": "arn:aws:lookoutvision:us-east-1:123456789012:model/tiles/1",
                "files": {p: {"sha256": hashlib.sha256(d).hexdigest(), "bytes": len(d)} for p, d in files.items()}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return Bundle.open(folder)


@pytest.fixture(scope="module")
def segmentation(tmp_path_factory):
    output, hosted = trained(masked=True)
    return write_bundle(tmp_path_factory.mktemp("seg"), output), hosted


@pytest.fixture(scope="module")
def classification(tmp_path_factory):
    output, hosted = trained(masked=False)
    return write_bundle(tmp_path_factory.mktemp("cls"), output, "loupe-cls"), hosted


def images():
    for i, shape in enumerate(SHAPES * 2):
        data = defect_png(700 + i, "scratch" if i % 3 else "dent")[0] if i % 2 else pattern_png(800 + i)
        with Image.open(io.BytesIO(data)) as image:
            yield np.asarray(image.convert("RGB").resize(shape))


@pytest.mark.parametrize("kind", ["segmentation", "classification"])
def test_a_bundle_scores_every_image_as_the_hosted_model(kind, request):
    bundle, hosted = request.getfixturevalue(kind)
    edge = EdgeModel(bundle)
    flagged = 0
    for rgb in images():
        expected = hosted.detect(Image.fromarray(rgb))
        got = edge.detect(rgb)
        assert got.score == pytest.approx(expected.score, abs=1e-4)
        assert got.is_anomalous == expected.is_anomalous and got.confidence == pytest.approx(expected.confidence, abs=1e-6)
        if expected.is_anomalous and kind == "segmentation":
            flagged += 1
            assert [(n, c, round(s, 6)) for n, c, s in got.anomalies[1:]] == [
                (spec.name, spec.color, round(share, 6)) for spec, share in expected.found]
            with Image.open(io.BytesIO(expected.mask_png)) as mask:
                assert np.array_equal(got.mask_rgb(edge.colors, *rgb.shape[:2]), np.asarray(mask.convert("RGB")))
    assert kind == "classification" or flagged >= 3


def test_an_altered_or_foreign_bundle_is_refused(segmentation, tmp_path):
    bundle, _ = segmentation
    altered = write_bundle(tmp_path, type("O", (), {"model_onnx": bundle.files["model/model.onnx"],
                                                     "sidecar": json.loads(bundle.files["model/model.json"])})())
    (tmp_path / "model" / "model.onnx").write_bytes(altered.files["model/model.onnx"] + b"\0")
    with pytest.raises(BundleError, match="does not match its SHA-256"):
        Bundle.open(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something/9"}))
    with pytest.raises(BundleError, match="bundle format"):
        Bundle.open(tmp_path)


@pytest.fixture
def agent(segmentation, classification, tmp_path):
    agent = EdgeAgent({"loupe-tiles": segmentation[0], "loupe-cls": classification[0]}, workers=1, queue=0)
    socket = tmp_path / "edge.sock"
    server = serve(agent, f"unix://{socket}", workers=1, queue=0)
    channel = grpc.insecure_channel(f"unix://{socket}")
    yield agent, pb_grpc.EdgeAgentStub(channel)
    channel.close()
    server.stop(0).wait()


def running(stub, name: str) -> None:
    assert stub.StartModel(pb.StartModelRequest(model_component=name)).status == pb.STARTING
    deadline = time.monotonic() + 60
    while (status := stub.DescribeModel(pb.DescribeModelRequest(model_component=name)).model_description.status) != pb.RUNNING:
        assert status == pb.STARTING and time.monotonic() < deadline
        time.sleep(0.05)


def code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failed:
        call()
    return failed.value.code()


def frame(rgb: np.ndarray) -> pb.Bitmap:
    return pb.Bitmap(width=rgb.shape[1], height=rgb.shape[0], byte_data=rgb.tobytes())


def test_models_start_stopped_and_follow_the_contracts_lifecycle(agent):
    _, stub = agent
    listed = stub.ListModels(pb.ListModelsRequest()).models
    assert [(m.model_component, m.status) for m in listed] == [("loupe-cls", pb.STOPPED), ("loupe-tiles", pb.STOPPED)]
    assert listed[1].lookout_vision_model_arn.endswith(":model/tiles/1")
    rgb = next(images())
    detect = pb.DetectAnomaliesRequest(model_component="loupe-tiles", bitmap=frame(rgb))
    assert code(lambda: stub.DetectAnomalies(detect)) == grpc.StatusCode.FAILED_PRECONDITION
    assert code(lambda: stub.StopModel(pb.StopModelRequest(model_component="loupe-tiles"))) == grpc.StatusCode.FAILED_PRECONDITION
    running(stub, "loupe-tiles")
    assert code(lambda: stub.StartModel(pb.StartModelRequest(model_component="loupe-tiles"))) == grpc.StatusCode.FAILED_PRECONDITION
    result = stub.DetectAnomalies(detect).detect_anomaly_result
    assert result.anomalies[0].name == "background" and len(result.anomaly_mask.byte_data) == rgb.size
    assert stub.StopModel(pb.StopModelRequest(model_component="loupe-tiles")).status == pb.STOPPED
    assert code(lambda: stub.DetectAnomalies(detect)) == grpc.StatusCode.FAILED_PRECONDITION
    for name, expected in (("", grpc.StatusCode.INVALID_ARGUMENT), ("nope", grpc.StatusCode.NOT_FOUND)):
        assert code(lambda: stub.DescribeModel(pb.DescribeModelRequest(model_component=name))) == expected
        assert code(lambda: stub.StartModel(pb.StartModelRequest(model_component=name))) == expected


def test_classification_models_answer_without_a_mask(agent):
    _, stub = agent
    running(stub, "loupe-cls")
    rgb = list(images())[1]
    result = stub.DetectAnomalies(pb.DetectAnomaliesRequest(model_component="loupe-cls", bitmap=frame(rgb))).detect_anomaly_result
    assert 0.5 <= result.confidence <= 1 and not result.anomalies and not result.HasField("anomaly_mask")


@pytest.mark.parametrize(("width", "height", "data", "why"), [
    (63, 64, b"\0" * 63 * 64 * 3, "too narrow"), (64, 4097, b"", "too tall"), (64, 64, b"\0" * 100, "short"),
    (64, 64, None, "no data")])
def test_bad_bitmaps_are_invalid_arguments(agent, width, height, data, why):
    _, stub = agent
    running(stub, "loupe-tiles")
    bitmap = pb.Bitmap(width=width, height=height) if data is None else pb.Bitmap(width=width, height=height, byte_data=data)
    request = pb.DetectAnomaliesRequest(model_component="loupe-tiles", bitmap=bitmap)
    assert code(lambda: stub.DetectAnomalies(request)) == grpc.StatusCode.INVALID_ARGUMENT, why
    handle = pb.SharedMemoryHandle(name="/no-such-loupe-segment", size=64 * 64 * 3, offset=0)
    request = pb.DetectAnomaliesRequest(model_component="loupe-tiles",
                                        bitmap=pb.Bitmap(width=64, height=64, shared_memory_handle=handle))
    assert code(lambda: stub.DetectAnomalies(request)) == grpc.StatusCode.INVALID_ARGUMENT


def test_a_frame_beyond_the_queue_is_resource_exhausted_not_queued(agent):
    service, stub = agent
    running(stub, "loupe-tiles")
    model = service.slots["loupe-tiles"].model
    gate, scoring = threading.Event(), threading.Event()
    original = model.detect

    def held(rgb):
        scoring.set()
        gate.wait(30)
        return original(rgb)

    model.detect = held
    request = pb.DetectAnomaliesRequest(model_component="loupe-tiles", bitmap=frame(next(images())))
    first = stub.DetectAnomalies.future(request)
    try:
        assert scoring.wait(30)  # the one worker is busy and the queue is 0 long
        assert code(lambda: stub.DetectAnomalies(request)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        gate.set()
    assert first.result(timeout=30).detect_anomaly_result.anomalies
    assert stub.DetectAnomalies(request).detect_anomaly_result.anomalies  # admitted again once free


def test_the_committed_stubs_are_what_the_proto_generates(tmp_path):
    from pathlib import Path

    from grpc_tools import protoc

    root = Path(__import__("loupe_edge").__file__).parent.parent
    assert protoc.main(["protoc", f"-I{root}", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
                        f"--pyi_out={tmp_path}", "loupe_edge/proto/edge_agent.proto"]) == 0
    # The .pyi is what mypy (make lint) reads for the message classes.
    for name in ("edge_agent_pb2.py", "edge_agent_pb2_grpc.py", "edge_agent_pb2.pyi"):
        generated = (tmp_path / "loupe_edge" / "proto" / name).read_bytes()
        assert generated == (root / "loupe_edge" / "proto" / name).read_bytes(), (
            "regenerate: cd libs/edge && python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. "
            "--pyi_out=. loupe_edge/proto/edge_agent.proto")


def test_shared_memory_frames_and_masks_and_handles_that_do_not_fit(agent):
    from multiprocessing import shared_memory

    _, stub = agent
    running(stub, "loupe-tiles")
    rgb = list(images())[1]  # defective
    size = rgb.nbytes
    segment = shared_memory.SharedMemory(create=True, size=2 * size + 7)
    try:
        segment.buf[7 : 7 + size] = rgb.reshape(-1)
        name = "/" + segment.name
        request = pb.DetectAnomaliesRequest(model_component="loupe-tiles", bitmap=pb.Bitmap(
            width=rgb.shape[1], height=rgb.shape[0], shared_memory_handle=pb.SharedMemoryHandle(name=name, size=size, offset=7)))
        request.anomaly_mask_params.shared_memory_handle.CopyFrom(pb.SharedMemoryHandle(name=name, size=size, offset=7 + size))
        by_memory = stub.DetectAnomalies(request).detect_anomaly_result
        by_bytes = stub.DetectAnomalies(pb.DetectAnomaliesRequest(model_component="loupe-tiles", bitmap=frame(rgb))).detect_anomaly_result
        assert by_memory.anomaly_mask.shared_memory_handle.offset == 7 + size
        assert bytes(segment.buf[7 + size : 7 + 2 * size]) == by_bytes.anomaly_mask.byte_data
        assert by_memory.is_anomalous == by_bytes.is_anomalous and by_memory.confidence == by_bytes.confidence
        for bad in (pb.SharedMemoryHandle(name=name, size=size, offset=size + 8),  # runs past the end
                    pb.SharedMemoryHandle(name=name, size=size - 1, offset=0),  # smaller than the bitmap
                    pb.SharedMemoryHandle(name="/../etc/passwd", size=size, offset=0)):
            request.bitmap.shared_memory_handle.CopyFrom(bad)
            assert code(lambda: stub.DetectAnomalies(request)) == grpc.StatusCode.INVALID_ARGUMENT
    finally:
        segment.close()
        segment.unlink()
