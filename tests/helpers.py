"""Helpers shared by the tests: real clients, real images, objects in the local bucket root."""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

DEV_KEY = "LOUPEDEVACCESSKEY"
DEV_SECRET = "loupe-dev-secret-key"
# POST /v3/auth/tokens for the development IAM user (Image Recognition tokens).
IAM_BODY = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "loupe", "password": "loupe-dev-password", "domain": {"name": "loupe"}}}},
    "scope": {"project": {"name": "cn-north-4"}}}}
REGION = "us-east-1"


def make_client(service: str, endpoint_url: str, *, secret: str = DEV_SECRET, key: str = DEV_KEY):
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def png_bytes(width: int = 96, height: int = 96, seed: int = 0, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """A real image with random content (distinct per seed)."""
    from PIL import Image

    rng = random.Random(seed)
    img = Image.frombytes(mode, (width, height), bytes(rng.getrandbits(8) for _ in range(width * height * len(mode))))
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


def put_object(root: Path, bucket: str, key: str, data: bytes) -> str:
    path = root / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"s3://{bucket}/{key}"




def signed_request(endpoint_url: str, method: str, path: str, *, body: bytes = b"", headers: dict | None = None,
                   service: str = "lookoutvision", secret: str = DEV_SECRET, timeout: float = 30.0,
                   key: str = DEV_KEY):
    """A raw request signed with SigV4 exactly as botocore signs, for inputs the SDKs refuse to send."""
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=endpoint_url + path, data=body, headers=headers or {})
    SigV4Auth(Credentials(key, secret), service, REGION).add_auth(request)
    return httpx.request(method, endpoint_url + path, content=body, headers=dict(request.headers.items()),
                         timeout=timeout)


def wait_dataset(lookout, project: str, dataset_type: str = "train", timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = lookout.describe_dataset(ProjectName=project, DatasetType=dataset_type)["DatasetDescription"]
        if not desc["Status"].endswith("IN_PROGRESS"):
            return desc
        assert time.monotonic() < deadline, f"dataset still {desc['Status']}"
        time.sleep(0.1)


def pattern_png(seed: int, defect: bool = False, size: int = 160) -> bytes:
    """A product-like image: a regular grid pattern with sensor noise; a defect is a bright scratch
    and a dark blob. Normal images differ only by noise and a small shift."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    dy, dx = rng.integers(0, 4, 2)
    yy, xx = np.indices((size, size))
    base = 70 + 110 * (((yy + dy) // 10 + (xx + dx) // 10) % 2) + rng.normal(0, 8, (size, size))
    rgb = np.stack([base, base * 0.9, base * 0.8], -1)
    if defect:
        y0, x0 = rng.integers(30, size - 50, 2)
        for t in range(40):
            rgb[y0 + t // 2, x0 + t, :] = [255, 250, 240]
        blob = (yy - y0 - 20) ** 2 + (xx - x0 - 10) ** 2 < 36
        rgb[blob] = [20, 15, 10]
    out = io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def pattern_mask(seed: int, size: int = 160, color: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """The colour mask of pattern_png(seed, defect=True): `color` on the scratch and the blob, white
    elsewhere (Ground Truth's background)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)  # the same draws as pattern_png, in the same order
    rng.integers(0, 4, 2)
    rng.normal(0, 8, (size, size))
    y0, x0 = rng.integers(30, size - 50, 2)
    yy, xx = np.indices((size, size))
    defect = np.zeros((size, size), bool)
    for t in range(40):
        defect[y0 + t // 2, x0 + t] = True
    defect |= (yy - y0 - 20) ** 2 + (xx - x0 - 10) ** 2 < 36
    rgb = np.full((size, size, 3), 255, np.uint8)
    rgb[defect] = color
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return out.getvalue()


# A segmentation model's dataset: one anomaly class, as Ground Truth writes its colour map.
SCRATCH_COLOR_MAP = {"0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": 0.0},
                     "1": {"class-name": "scratch", "hex-color": "#FF0000", "confidence": 0.0}}

# --- models (shared by the model, hosting and inference tests) ---

OUTPUT = {"S3Location": {"Bucket": "loupe-output", "Prefix": "evaluations/"}}


def code_of(excinfo) -> tuple[str, int]:
    r = excinfo.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def fill(lookout, root, project: str, dataset_type: str, normal: int, anomalous: int, seed: int,
         masks: bool = False) -> None:
    """`masks`: the anomalous images carry colour masks (one class, scratch), so a model trained on
    the datasets is a segmentation model."""
    lines = [json.dumps({"source-ref": put_object(root, "models-bkt", f"{project}/{dataset_type}/n{i}.png",
                                                  pattern_png(seed + i)), "anomaly-label": 0}) for i in range(normal)]
    for i in range(anomalous):
        line = {"source-ref": put_object(root, "models-bkt", f"{project}/{dataset_type}/a{i}.png",
                                         pattern_png(seed + 500 + i, defect=True)), "anomaly-label": 1}
        if masks:
            line["anomaly-mask-ref"] = put_object(root, "models-bkt", f"{project}/{dataset_type}/a{i}-mask.png",
                                                  pattern_mask(seed + 500 + i))
            line["anomaly-mask-ref-metadata"] = {"internal-color-map": SCRATCH_COLOR_MAP,
                                                 "type": "groundtruth/semantic-segmentation"}
        lines.append(json.dumps(line))
    lookout.create_dataset(ProjectName=project, DatasetType=dataset_type)
    lookout.update_dataset_entries(ProjectName=project, DatasetType=dataset_type, Changes="\n".join(lines).encode())
    assert wait_dataset(lookout, project, dataset_type)["Status"] == "UPDATE_COMPLETE"


def wait_model(lookout, project: str, version: str = "1", timeout: float = 180,
               done=lambda status: status != "TRAINING") -> dict:
    deadline = time.monotonic() + timeout
    while True:
        desc = lookout.describe_model(ProjectName=project, ModelVersion=version)["ModelDescription"]
        if done(desc["Status"]):
            return desc
        assert time.monotonic() < deadline, desc
        time.sleep(0.5)


def wait_status(lookout, project: str, version: str, wanted: str, timeout: float = 60) -> dict:
    desc = wait_model(lookout, project, version, timeout, done=lambda s: s in (wanted, "HOSTING_FAILED"))
    assert desc["Status"] == wanted, desc
    return desc


def train_model(lookout, root, project: str, *, test_normal: int = 6, test_anomalous: int = 6,
                segmentation: bool = False) -> dict:
    """A project with pattern-image datasets and a trained model version 1 (DescribeModel)."""
    lookout.create_project(ProjectName=project)
    fill(lookout, root, project, "train", normal=14, anomalous=0, seed=0)
    fill(lookout, root, project, "test", normal=test_normal, anomalous=test_anomalous, seed=100, masks=segmentation)
    lookout.create_model(ProjectName=project, OutputConfig=OUTPUT)
    described = wait_model(lookout, project)
    assert described["Status"] == "TRAINED", described
    return described


def train_and_host(lookout, root, project: str, *, test_normal: int = 6, test_anomalous: int = 6,
                   segmentation: bool = False) -> tuple[dict, dict]:
    """A project with a pattern-image model version 1, trained and started on one inference unit:
    (the StartModel response, DescribeModel once HOSTED). A classification model, or with
    `segmentation` one that names its anomaly class (scratch, #FF0000)."""
    train_model(lookout, root, project, test_normal=test_normal, test_anomalous=test_anomalous,
                segmentation=segmentation)
    started = lookout.start_model(ProjectName=project, ModelVersion="1", MinInferenceUnits=1)
    return started, wait_status(lookout, project, "1", "HOSTED")


def server_timing(response: dict) -> dict[str, float]:
    """A boto3 response's Server-Timing header: {"roundtrip": ms, "inference": ms} for DetectAnomalies."""
    header = response["ResponseMetadata"]["HTTPHeaders"].get("server-timing", "")
    parts = (item.strip().split(";dur=") for item in header.split(",") if ";dur=" in item)
    return {name: float(value) for name, value in parts}


# --- the ingest topic, as a producing application uses it ------------------------------------
INGEST_TOPIC, INGEST_RESULTS = "loupe.ingest", "loupe.ingest.results"


def ingest_headers(project: str, image_id: str, version: str = "1",
                   content_type: str = "image/png") -> list[tuple[str, bytes]]:
    return [("loupe-project", project.encode()), ("loupe-model-version", version.encode()),
            ("content-type", content_type.encode()), ("loupe-image-id", image_id.encode())]


class IngestStream:
    """Produces ingest records and collects every result for them, keyed by source position."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.sent: dict[tuple[int, int], str] = {}
        self.results: dict[tuple[int, int], list[dict]] = {}

    async def __aenter__(self) -> IngestStream:
        self.producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, max_request_size=8 * 1024 * 1024)
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                         fetch_max_wait_ms=20)
        await self.producer.start()
        await self.consumer.start()
        partitions = [TopicPartition(INGEST_RESULTS, p) for p in
                      self.consumer.partitions_for_topic(INGEST_RESULTS) or (await self._partitions())]
        self.consumer.assign(partitions)
        for tp, end in (await self.consumer.end_offsets(partitions)).items():
            self.consumer.seek(tp, end)
        return self

    async def _partitions(self) -> set[int]:
        await self.consumer._client.force_metadata_update()  # noqa: SLF001 - first use of the topic
        return self.consumer.partitions_for_topic(INGEST_RESULTS) or set()

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()
        await self.consumer.stop()

    async def send(self, image_id: str, value: bytes, headers: list[tuple[str, bytes]] | None) -> None:
        meta = await self.producer.send_and_wait(INGEST_TOPIC, value, headers=headers)
        self.sent[(meta.partition, meta.offset)] = image_id

    async def collect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not set(self.sent) <= set(self.results):
            batches = await self.consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    body = json.loads(record.value)
                    source = body["source"]
                    if source["topic"] == INGEST_TOPIC:
                        self.results.setdefault((source["partition"], source["offset"]), []).append(body)

    def outcome(self, image_id: str) -> dict:
        [position] = [p for p, i in self.sent.items() if i == image_id]
        [result] = self.results[position]
        return result
