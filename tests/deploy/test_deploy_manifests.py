"""Deployment artefacts: Kubernetes manifests, docker-compose.yml, Dockerfiles and image contents.

Offline only. Needs kubectl on PATH (renders the kustomizations), kubernetes-validate (bundles the
Kubernetes JSON schemas) and check-jsonschema (bundles the Compose Specification schema).
"""

from __future__ import annotations

import base64
import functools
import importlib.metadata
import importlib.resources
import json
import re
import shlex
import shutil
import subprocess
import tomllib
import warnings
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.30.0"
UID = 10001
IMAGE_TAG = "0.1.0"
# services/<dir> -> the name used for the Deployment, Service, compose service and image
SERVICES = {
    "gateway": "gateway",
    "dataset": "dataset",
    "training": "training",
    "hosting": "hosting",
    "inference": "inference",
    "human_loop": "human-loop",
}
KUSTOMIZATIONS = ["deploy/k8s/base", "deploy/k8s/overlays/dev"]
SECRET_KEYS = {"LOUPE_ACCESS_KEY_ID", "LOUPE_SECRET_ACCESS_KEY", "LOUPE_MONGO_URL", "LOUPE_IAM_PASSWORD"}
DEV_CREDENTIALS = ("LOUPEDEVACCESSKEY", "loupe-dev-secret-key", "loupe-dev-password")


def skip_because(reason: str):
    """Skip, and say why in the warnings summary that pytest prints by default."""
    warnings.warn(reason, stacklevel=2)
    pytest.skip(reason)


# --- Kubernetes ---------------------------------------------------------------------------------


@functools.cache
def _kustomize(path: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        skip_because("kubectl is not on PATH: it renders deploy/k8s (kubectl kustomize)")
    done = subprocess.run(
        [kubectl, "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"kubectl kustomize {path} failed:\n{done.stderr}"
    return done.stdout


def rendered(path: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(_kustomize(path)) if doc]


def of_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def the_configmap(docs: list[dict]) -> dict:
    (config,) = [c for name, c in of_kind(docs, "ConfigMap").items() if name.startswith("loupe-config")]
    return config


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_kustomization_renders_valid_objects(path):
    docs = rendered(path)
    assert docs, f"{path} rendered nothing"
    failures = []
    for doc in docs:
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            failures.append(f"{name}: {e.message} at {'/'.join(map(str, e.absolute_path))}")
        except kubernetes_validate.SchemaNotFoundError as e:
            failures.append(f"{name}: {e.message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_every_service_has_a_deployment_and_a_clusterip_service(path):
    docs = rendered(path)
    deployments, services = of_kind(docs, "Deployment"), of_kind(docs, "Service")
    assert set(deployments) == set(SERVICES.values())
    assert set(services) == set(SERVICES.values())
    for name, service in services.items():
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", name
        pod = deployments[name]["spec"]["template"]
        selector = service["spec"]["selector"]
        assert selector.items() <= pod["metadata"]["labels"].items(), f"Service {name} selects no pod"
        port_names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"Service {name} targets an unnamed port"


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_deployments_are_probed_limited_and_unprivileged(path):
    docs = rendered(path)
    for name, deployment in of_kind(docs, "Deployment").items():
        labels = deployment["metadata"]["labels"]
        assert labels.get("app.kubernetes.io/part-of") == "loupe", name
        pod = deployment["spec"]["template"]["spec"]
        pod_security = pod.get("securityContext", {})
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        (container,) = pod["containers"]
        where = f"{path}: Deployment {name}"
        security = {**pod_security, **container.get("securityContext", {})}

        assert container["image"] == f"loupe/{name}:{IMAGE_TAG}", where
        assert security.get("runAsNonRoot") is True, where
        assert security.get("runAsUser") == UID, where
        assert security.get("allowPrivilegeEscalation") is False, where
        assert security.get("readOnlyRootFilesystem") is True, where
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be a writable emptyDir"

        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(bound, {}).keys(), f"{where}: {bound}"

        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        expected_port = 8080 if name == "gateway" else 8081
        for probe, path_ in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
            http = container.get(probe, {}).get("httpGet")
            assert http, f"{where}: no {probe}"
            assert http["path"] == path_, f"{where}: {probe}"
            assert ports.get(http["port"], http["port"]) == expected_port, f"{where}: {probe} port"

        # Later envFrom sources win, so the Secret must come after the ConfigMap.
        refs = [next(iter(source.items())) for source in container.get("envFrom", [])]
        assert [kind for kind, _ in refs] == ["configMapRef", "secretRef"], where
        assert refs[0][1]["name"].startswith("loupe-config"), where
        assert refs[1][1]["name"].startswith("loupe-credentials"), where


def test_base_references_but_does_not_contain_the_credentials():
    docs = rendered("deploy/k8s/base")
    assert not of_kind(docs, "Secret"), "the base must not carry a Secret"
    for name, deployment in of_kind(docs, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        secrets = [s["secretRef"]["name"] for s in container["envFrom"] if "secretRef" in s]
        assert secrets == ["loupe-credentials"], name
    assert not SECRET_KEYS & the_configmap(docs)["data"].keys(), "secrets belong in loupe-credentials"
    text = _kustomize("deploy/k8s/base")
    assert not any(value in text for value in DEV_CREDENTIALS)


def test_dev_overlay_generates_the_documented_development_credentials():
    docs = rendered("deploy/k8s/overlays/dev")
    (secret,) = of_kind(docs, "Secret").values()
    assert secret["metadata"]["name"].startswith("loupe-credentials")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {
        "LOUPE_ACCESS_KEY_ID": "LOUPEDEVACCESSKEY",
        "LOUPE_SECRET_ACCESS_KEY": "loupe-dev-secret-key",
        "LOUPE_IAM_PASSWORD": "loupe-dev-password",
        "LOUPE_ENVIRONMENT": "development",
        "LOUPE_MONGO_URL": "mongodb://mongo:27017",
    }
    for name, deployment in of_kind(docs, "Deployment").items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in container["envFrom"], name


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_dataset_keeps_the_s3_root_on_a_persistent_volume(path):
    docs = rendered(path)
    s3_root = the_configmap(docs)["data"]["LOUPE_S3_ROOT"]
    pod = of_kind(docs, "Deployment")["dataset"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert s3_root in mounts, f"nothing mounted at LOUPE_S3_ROOT={s3_root}"
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[s3_root]]
    assert volume["persistentVolumeClaim"]["claimName"] in of_kind(docs, "PersistentVolumeClaim")


def test_inference_replicas_are_set_on_their_own():
    kustomization = yaml.safe_load((ROOT / "deploy/k8s/base/kustomization.yaml").read_text())
    (count,) = [r["count"] for r in kustomization.get("replicas", []) if r["name"] == "inference"]
    deployment = of_kind(rendered("deploy/k8s/base"), "Deployment")["inference"]
    assert deployment["spec"]["replicas"] == count


# --- docker-compose.yml -------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_file_matches_the_compose_specification():
    try:
        vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        reason = (
            "check-jsonschema is not installed: it ships the Compose Specification schema "
            "(check_jsonschema/builtin_schemas/vendor/compose-spec.json); `make test` installs it"
        )
        skip_because(reason)
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(compose())
    ]
    assert not errors, "\n".join(errors)


def test_compose_wires_the_services_to_kafka_and_mongo():
    doc = compose()
    services = doc["services"]
    assert set(services) == {"kafka", "mongo", *SERVICES.values()}
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", services["kafka"]["image"])
    assert services["mongo"]["image"] == "mongo:7.0"
    for infra in ("kafka", "mongo"):
        assert services[infra].get("healthcheck", {}).get("test"), infra
        assert any(v.split(":")[0] in doc["volumes"] for v in services[infra]["volumes"]), infra

    env = doc["x-loupe-env"]
    assert env["LOUPE_ENVIRONMENT"] == "production"
    assert env["LOUPE_KAFKA_IDEMPOTENT_PRODUCER"] == "true"
    assert env["LOUPE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    for key in SECRET_KEYS:
        # Interpolated from the environment and required: no value is committed.
        assert re.search(r"\$\{[A-Z_]+:\?[^}]*\}", env[key]), key
    text = (ROOT / "docker-compose.yml").read_text()
    assert not any(value in text for value in DEV_CREDENTIALS)

    for directory, name in SERVICES.items():
        service = services[name]
        assert service["build"] == {"context": ".", "dockerfile": f"services/{directory}/Dockerfile"}
        assert (ROOT / service["build"]["dockerfile"]).is_file()
        assert service["image"] == f"loupe/{name}:{IMAGE_TAG}"
        assert service["environment"] == env, name
        assert {k: v["condition"] for k, v in service["depends_on"].items()} == {
            "kafka": "service_healthy",
            "mongo": "service_healthy",
        }, name
        port = 8080 if name == "gateway" else 8081
        assert f"127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"]), name
        assert ("ports" in service) == (name == "gateway"), f"only the gateway is published ({name})"

    assert services["gateway"]["ports"] == ["127.0.0.1:8080:8080"]
    volume, target = services["dataset"]["volumes"][0].split(":")
    assert volume in doc["volumes"] and target == env["LOUPE_S3_ROOT"]


# --- Dockerfiles --------------------------------------------------------------------------------


def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions as (KEYWORD, arguments), one list per FROM."""
    logical, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, f"{path}: instruction before FROM"
        stages[-1].append((keyword.upper(), args.strip()))
    return stages


@pytest.mark.parametrize("directory", SERVICES)
def test_dockerfile_builds_a_small_non_root_image_of_one_service(directory):
    path = ROOT / "services" / directory / "Dockerfile"
    stages = dockerfile_stages(path)
    assert len(stages) >= 2, "multi-stage: a builder and a runtime stage"
    builder, final = stages[0], stages[-1]
    builder_name = builder[0][1].split()[-1]
    assert re.fullmatch(r"\S+ AS \S+", builder[0][1], re.IGNORECASE), "the builder stage is named"
    assert final[0][1] == "python:3.11-slim"

    # The local packages an image may carry: libs/common, plus libs/models and the numpy-only rules
    # it builds on (libs/edge) when the service declares loupe-models (shared preprocessing and
    # decision rules; training also ships the exported backbones).
    declared = tomllib.loads((ROOT / "services" / directory / "pyproject.toml").read_text())["project"]["dependencies"]
    local = {"libs/common", f"services/{directory}"} | ({"libs/models", "libs/edge"} if "loupe-models" in declared else set())
    copied = [shlex.split(args)[:-1] for kw, args in builder if kw == "COPY"]
    sources = {s.removeprefix("./").rstrip("/") for c in copied for s in c if not s.startswith("--")}
    assert sources == {"constraints.txt"} | local

    (install,) = [args for kw, args in builder if kw == "RUN" and "pip install" in args]
    words = shlex.split(install.split("pip install", 1)[1])
    assert "-c" in words and words[words.index("-c") + 1] == "constraints.txt"
    del words[words.index("-c") : words.index("-c") + 2]
    targets = {w.removeprefix("./").rstrip("/") for w in words if not w.startswith("-")}
    assert targets == local, "installs only common (and models) and the service"

    copied = [args for kw, args in final if kw == "COPY"]
    expected = [f"--from={builder_name} /opt/venv /opt/venv"]
    if directory == "training":  # trains on the exported ONNX backbones from the build-time stage
        expected.append("--from=models /opt/loupe/models /opt/loupe/models")
    if directory == "inference":  # image tagging: the classifier and the converted detector
        expected += ["--from=models /opt/loupe/models /opt/loupe/models",
                     "--from=detector /opt/loupe/detector /opt/loupe/models"]
    assert copied == expected, "the runtime image gets only the venv (and exported models)"
    users = [args for kw, args in final if kw == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the image runs as a non-root user"
    assert users[-1].split(":")[0] == str(UID)
    keywords = [kw for kw, _ in final]
    assert keywords.index("USER") < keywords.index("CMD"), "USER comes before CMD"

    env = dict(w.split("=", 1) for kw, args in final if kw == "ENV" for w in shlex.split(args))
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1" and env.get("PYTHONUNBUFFERED") == "1"
    port = "8080" if directory == "gateway" else "8081"
    host_var = "LOUPE_GATEWAY_HOST" if directory == "gateway" else "LOUPE_HEALTH_HOST"
    assert env.get(host_var) == "0.0.0.0"
    assert ("EXPOSE", port) in final

    (healthcheck,) = [args for kw, args in final if kw == "HEALTHCHECK"]
    assert "urllib" in healthcheck and "/health" in healthcheck
    (cmd,) = [args for kw, args in final if kw == "CMD"]
    assert json.loads(cmd) == ["python", "-m", f"loupe_{directory}"]


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    patterns = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".loupe-data", "tests"} <= patterns
    assert patterns & {"node_modules", "**/node_modules"}
    assert patterns & {"__pycache__", "**/__pycache__"}


# --- What each image installs -------------------------------------------------------------------


def _local_projects() -> dict[str, Path]:
    projects = {}
    for pyproject in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]:
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        projects[canonicalize_name(name)] = pyproject
    return projects


def _requirements(name: str, local: dict[str, Path]) -> list[str] | None:
    """Declared requirements: a local project's pyproject.toml, else the installed metadata."""
    if name in local:
        project = tomllib.loads(local[name].read_text())["project"]
        declared = list(project.get("dependencies", []))
        for extra, reqs in project.get("optional-dependencies", {}).items():
            for text in reqs:
                req = Requirement(text)
                marker = f"extra == '{extra}'"
                if req.marker:
                    marker = f"({req.marker}) and {marker}"
                req.marker = None
                declared.append(f"{req}; {marker}")
        return declared
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return None


def dependency_closure(root: str) -> set[str]:
    local = _local_projects()
    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    missing: set[str] = set()
    todo = [(canonicalize_name(root), "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        names.add(name)
        requirements = _requirements(name, local)
        if requirements is None:
            missing.add(name)
            continue
        for text in requirements:
            req = Requirement(text)
            if req.marker and not req.marker.evaluate({"extra": extra}):
                continue
            dep = canonicalize_name(req.name)
            todo.append((dep, ""))
            todo.extend((dep, e) for e in req.extras)
    assert not missing, f"not installed, so their dependencies cannot be checked: {sorted(missing)}"
    return names


@pytest.mark.parametrize(
    ("directory", "forbidden", "present"),
    [("gateway", "onnxruntime", "fastapi"), ("inference", "fastapi", "aiokafka")],
)
def test_image_dependency_closure_leaves_out_the_other_services_stack(directory, forbidden, present):
    pyproject = ROOT / "services" / directory / "pyproject.toml"
    name = tomllib.loads(pyproject.read_text())["project"]["name"]
    closure = dependency_closure(name)
    assert "loupe-common" in closure and present in closure, "the walk must reach shared dependencies"
    carried = sorted(d for d in closure if d == forbidden or d.startswith(forbidden + "-"))
    assert not carried, f"{name} pulls in {carried}"
