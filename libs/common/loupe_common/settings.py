"""One settings class for every Loupe process; every variable is spelled LOUPE_<NAME>."""

from __future__ import annotations

import os
import socket
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Documented development credentials (README). Refused outside development.
DEV_ACCESS_KEY_ID = "LOUPEDEVACCESSKEY"
DEV_SECRET_ACCESS_KEY = "loupe-dev-secret-key"  # noqa: S105 - documented development key (README), refused in production
DEV_IAM_PASSWORD = "loupe-dev-password"  # noqa: S105 - documented development key (README), refused in production


def _default_instance_id() -> str:
    host = socket.gethostname().split(".")[0].lower()
    safe = "".join(c if c.isalnum() or c == "-" else "-" for c in host)[:40]
    return f"{safe}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOUPE_", extra="ignore")

    environment: Literal["development", "production"] = "development"

    # Kafka
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_idempotent_producer: bool = Field(
        False, description="On for real Kafka; the local Tansu broker does not support it."
    )
    kafka_max_message_bytes: int = 4 * 1024 * 1024
    kafka_fetch_max_wait_ms: int = Field(
        10,
        ge=1,
        description="Longest wait of an idle fetch on the request path. Tansu answers an empty fetch only "
        "when this expires, so locally it bounds request/reply latency, while shorter waits load the broker "
        "(10 ms measured best on 2 cores); real Kafka answers as soon as data arrives (use 500).",
    )
    kafka_detect_fetch_max_wait_ms: int = Field(
        2,
        ge=1,
        description="The same for the consumers on the DetectAnomalies path: the gateway's replies and the "
        "inference units' requests. Only these few poll this often, so the broker's idle load stays "
        "bounded (measured: DetectAnomalies p50 40.0 -> 36.2 ms against 10 ms); use 500 on real Kafka.",
    )
    kafka_idle_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        description="The same for consumers off the request path (jobs, heartbeats, assignment tables, "
        "ingest): every idle fetch costs the broker work, and on a small machine that work slows the "
        "request path (measured in tests/benchmarks/bench_inference.py).",
    )
    kafka_metadata_max_age_ms: int = Field(
        300_000, ge=1000, description="How often every Kafka client refreshes topic metadata (aiokafka's "
        "default). A consumer whose topic was created anew rejoins with its partitions within this; "
        "make run restarts the services with its broker, so it does not rely on it.",
    )
    topic_partitions: int = Field(6, ge=1, description="Partitions for work topics (caps consumers).")
    topic_replication: int = Field(1, ge=1)

    # MongoDB: motor against this URL when set, otherwise the embedded store (embedded_store.py).
    mongo_url: SecretStr | None = None
    mongo_database: str = "loupe"
    embedded_store_durable: bool = Field(
        True, description="Without LOUPE_MONGO_URL: keep each service's collections in "
        "<data_dir>/state/<service>.sqlite3 (survives crashes and restarts); false = memory only.",
    )

    # Storage
    data_dir: Path = Path(".loupe-data")
    s3_root: Path | None = Field(None, description="Local bucket root for s3:// refs; default <data_dir>/s3")
    s3_endpoint_url: str | None = Field(
        None, description="An S3-compatible endpoint for s3:// refs and uploads instead of the local root"
    )
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    upload_bucket: str = "loupe-uploads"
    allow_file_refs: bool = False
    file_ref_roots: str = Field("", description="Folders file:// references may read, separated by ':'; "
                                "none: every file:// reference is refused")
    allow_private_urls: bool = Field(False, description="Let http(s) refs reach private/loopback hosts.")

    # Identity of the emulated AWS account
    region: str = Field("us-east-1", description="The region in every ARN Loupe issues; set it to the region "
                        "your code used on AWS so stored ARNs read the same")
    signing_regions: str = Field("", description="Regions whose SigV4 signatures are accepted besides "
                                 "LOUPE_REGION, comma-separated, or * for any (clients keep their region "
                                 "setting and change only the endpoint URL); ARNs of these regions are read "
                                 "as LOUPE_REGION's")
    account_id: str = Field("123456789012", pattern=r"^\d{12}$")
    access_key_id: str = DEV_ACCESS_KEY_ID
    secret_access_key: SecretStr = SecretStr(DEV_SECRET_ACCESS_KEY)

    # Processes
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8080
    health_host: str = "127.0.0.1"
    health_port: int = 0
    request_timeout_seconds: float = Field(15.0, gt=0)
    reply_topic_grace_seconds: float = Field(
        60.0, ge=10, description="A reply topic that no living process announced for this long belongs to a "
        "process that died without cleaning up (a pod killed outright): the hosting service deletes it. "
        "Every process announces its reply topics six times per grace period.",
    )

    # Hosting and inference
    detect_timeout_seconds: float = Field(
        30.0, gt=0, description="How long the gateway awaits a detection; covers a worker dying "
        "mid-request (group rebalance after the 6 s session timeout) and the request being redone.",
    )
    claim_check_bytes: int = Field(
        512 * 1024, ge=0, description="Images larger than this travel to workers through blob storage."
    )
    inference_threads: int = Field(0, ge=0, description="onnxruntime threads per worker; 0 = all cores")
    heartbeat_seconds: float = Field(1.0, gt=0)
    worker_timeout_seconds: float = Field(5.0, gt=0, description="A worker silent this long is dead")
    autoscale_up_cooldown_seconds: float = Field(5.0, ge=0,
                                                 description="Least time between two unit additions")
    autoscale_down_after_seconds: float = Field(
        60.0, ge=0,
        description="How long units must stay idle before one is removed (never below MinInferenceUnits)")
    max_inference_units: int = Field(
        0, ge=0, description="Largest MinInferenceUnits/MaxInferenceUnits; 0 = topic_partitions"
    )
    # Human review
    max_active_human_loops: int = Field(
        1000, ge=1, description="Active (InProgress/Stopping) human loops per flow definition; more is "
        "ServiceQuotaExceededException. A flow definition's MaxActiveHumanLoops can only lower it.",
    )
    human_loop_bucket: str = Field("loupe-human-loops",
                                   description="Default OutputConfig.S3OutputPath bucket")
    review_session_hours: float = Field(12.0, gt=0, description="How long a reviewer stays signed in")
    secure_cookies: bool = Field(False, description="Mark the console's and reviewer page's cookies Secure "
                                 "always (otherwise: when the request came over HTTPS, or a proxy says so)")
    console_session_hours: float = Field(8.0, gt=0, le=24 * 7, description="How long a console sign-in "
                                         "lasts (the session cannot be revoked before; changing the secret "
                                         "ends them all)")
    activation_table_seconds: float = Field(2.0, gt=0,
                                            description="How often the activation table is re-sent")

    # Image tagging (Huawei Image Recognition): the IAM-style user that gets tokens, and limits
    iam_user_name: str = "loupe"
    iam_password: SecretStr = SecretStr(DEV_IAM_PASSWORD)
    iam_domain_name: str = Field("loupe",
                                 description="The account (domain) name token requests must name")
    iam_project_name: str = Field("cn-north-4", min_length=1, description="The account's one IAM project "
                                  "(named after its region, as Huawei Cloud names them): what "
                                  "GET /v3/projects?name= finds")
    iam_project_id: str = Field("0a1b2c3d4e5f60718293a4b5c6d7e8f9", pattern=r"^[0-9a-zA-Z-]{1,64}$",
                                description="That project's id (SDK clients built without a project id "
                                "look it up)")
    tagging_enabled: bool = Field(True, description="This inference worker serves image tagging (loads the "
                                  "classifier and detector: about 130 MB more per worker)")
    tagging_rate_per_second: float = Field(20.0, gt=0, description="Tagging requests per second per caller "
                                           "(per gateway); more is APIG.0308")
    tagging_burst: int = Field(40, ge=1)
    url_fetch_timeout_seconds: float = Field(10.0, gt=0)
    tagging_timeout_seconds: float = Field(30.0, gt=0)

    instance_id: str = Field(default_factory=_default_instance_id, pattern=r"^[a-z0-9-]{1,80}$")
    member_name: str | None = Field(
        None, pattern=r"^[a-z0-9_-]{1,60}$",
        description="A name this process keeps across restarts (make run: the process name; Kubernetes: a "
        "StatefulSet pod's name). Its service consumer groups then use static membership: a restarted "
        "process takes its partitions back without waiting for its dead predecessor's session to expire. "
        "Unset for replicas whose names change (Deployments).",
    )
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.access_key_id == DEV_ACCESS_KEY_ID
            or self.secret_access_key.get_secret_value() == DEV_SECRET_ACCESS_KEY
        ):
            raise ValueError("LOUPE_ACCESS_KEY_ID/LOUPE_SECRET_ACCESS_KEY must be set in production")
        if self.environment == "production" and self.iam_password.get_secret_value() == DEV_IAM_PASSWORD:
            raise ValueError("LOUPE_IAM_PASSWORD must be set in production")
        return self

    @property
    def bucket_root(self) -> Path:
        return (self.s3_root or self.data_dir / "s3").resolve()

    @property
    def inference_unit_limit(self) -> int:
        # A unit is a consumer-group member; members beyond the partition count would idle.
        return min(self.max_inference_units or self.topic_partitions, self.topic_partitions)

    @property
    def signing_region_set(self) -> frozenset[str] | None:
        """The regions accepted besides `region`; None for any."""
        if self.signing_regions.strip() == "*":
            return None
        return frozenset(r.strip() for r in self.signing_regions.split(",") if r.strip())

    def accepts_region(self, region: str) -> bool:
        accepted = self.signing_region_set
        return region == self.region or accepted is None or region in accepted

    @property
    def process_name(self) -> str:
        """This process among its kind: its stable member name, else its unique instance id."""
        return self.member_name or self.instance_id

    @property
    def embedded_store(self) -> bool:
        return self.mongo_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
