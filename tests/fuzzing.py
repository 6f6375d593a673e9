"""Malformed but correctly signed requests over every route family of the gateway, and what a
good answer to each looks like. tests/integration/test_fuzz.py sends a seeded few thousand in
`make test`; the longer run is this file as a script against a fresh local system:

    .venv/bin/python tests/fuzzing.py --count 20000 --seed 7

Routes come from the services' own descriptions: botocore's models for the Lookout for Vision and
A2I runtime operations, the gateway's OpenAPI for the Loupe-native and Image Recognition routes.
Bodies are broken at every level: not JSON, JSON past the parser's limits (deep nesting, numbers
of thousands of digits, NaN, unpaired surrogates), the wrong type at the top, and each member of
the operation's input shape replaced by a wrong type, a huge value or a deep tree. Path and query
parameters get junk, percent-encoded invalid UTF-8 and extreme lengths.
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import DEV_KEY, DEV_SECRET, IAM_BODY, REGION  # noqa: E402

FAMILIES = ("lookout", "a2i", "native", "huawei")
JUNK_STRINGS = ["", " ", "a" * 3000, "../../etc/passwd", "%00", "\u0000", "\u202e", "名字", "\U0001f600",
                "null", "0", "-1", "1e400", "<script>", "' OR 1=1 --", "\\", "/", "s3://b/k", "arn:aws:x"]


@dataclass
class Request:
    family: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    label: str = ""


def _json_breakers(rng: random.Random) -> list[bytes]:
    deep = rng.randint(40, 5000)
    return [
        b"[" * deep, b'{"a":' * deep + b"1" + b"}" * deep, b"9" * rng.randint(50, 6000), b"1e99999", b"-1e99999",
        b'{"x": NaN}', b'{"x": Infinity}', b'{"x": "\\ud800"}', b'{"\\udfff": 1}', b'["\\ud83d"]',
        b"{", b'{"a": 1', b"\xff\xfe\x00", bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))),
        b"[]", b'"text"', b"42", b"null", b"true", b'{"a": 1}' * 3, b'{"a": 1, "a": 2}', b"\x00" * 10,
    ]


def _wrong_values(rng: random.Random) -> list:
    deep: object = "x"
    for _ in range(rng.randint(30, 400)):
        deep = {"d": [deep]}
    return [None, True, -1, 0, 2**70, 10**300, 1.5e308, "", "x" * rng.randint(1000, 200_000), "\ud800", [], {},
            [None] * 50, {"": ""}, deep, rng.choice(JUNK_STRINGS), 123.456, [{"k": "v"}] * 3]


def _encode(value: object) -> bytes:
    """JSON text of `value`, keeping unpaired surrogates as \\u escapes (as an attacker would send them)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def _path_value(rng: random.Random, good: str) -> str:
    choice = rng.random()
    if choice < 0.35:
        return good
    if choice < 0.5:
        return "%ED%A0%80"  # a surrogate's UTF-8: invalid
    if choice < 0.6:
        return "%FF%FE"
    if choice < 0.7:
        return "x" * rng.choice([256, 2048, 9000])
    return urllib.parse.quote(rng.choice(JUNK_STRINGS) or "-", safe="")


def _fill(template: str, rng: random.Random) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1).rstrip("+")
        good = {"ProjectName": "fuzz-project", "project_name": "fuzz-project", "ModelVersion": "1",
                "model_version": "1", "DatasetType": "train", "ResourceArn": "arn%3Aaws%3Alookoutvision%3Aus-east-1"
                "%3A123456789012%3Aproject%2Ffuzz-project", "HumanLoopName": "fuzz-loop"}.get(name, "fuzz")
        return _path_value(rng, good)
    return re.sub(r"\{([^}]+)\}", one, template)


def _query(rng: random.Random, names: list[str]) -> str:
    if not names or rng.random() < 0.4:
        return ""
    picked = rng.sample(names, k=min(len(names), rng.randint(1, 3)))
    values = ["-1", "0", "abc", "1e9", "99999999999999999999", "%ED%A0%80", "x" * 5000, "", "true", "2020-13-45"]
    return "?" + "&".join(f"{name}={rng.choice(values)}" for name in picked)


def _bodies(rng: random.Random, members: list[str], count: int) -> Iterator[tuple[str, bytes]]:
    breakers = _json_breakers(rng)
    for _ in range(count):
        roll = rng.random()
        if roll < 0.35 or not members:
            yield "broken JSON", rng.choice(breakers)
        else:
            value = {m: rng.choice(["ok", 1, None]) for m in rng.sample(members, k=rng.randint(0, len(members)))}
            bad = rng.choice(members)
            value[bad] = rng.choice(_wrong_values(rng))
            yield f"{bad}: wrong", _encode(value)


def aws_requests(service: str, family: str, rng: random.Random, per_operation: int) -> list[Request]:
    """Every operation of botocore's model for `service`, with broken paths, queries and bodies."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    out = []
    for name in model.operation_names:
        op = model.operation_model(name)
        uri = op.http["requestUri"]
        path_template, _, fixed_query = uri.partition("?")
        members = list(op.input_shape.members) if op.input_shape else []
        query = [op.input_shape.members[m].serialization.get("name", m) for m in members
                 if op.input_shape.members[m].serialization.get("location") == "querystring"]
        headers = {op.input_shape.members[m].serialization["name"]: m for m in members
                   if op.input_shape.members[m].serialization.get("location") == "header"}
        for label, body in _bodies(rng, members, per_operation):
            path = _fill(path_template, rng) + (("?" + fixed_query) if fixed_query else "") + _query(rng, query)
            sent = {"Content-Type": "application/x-amz-json-1.1" if rng.random() < 0.1 else "application/json"}
            for header in headers:
                if rng.random() < 0.5:
                    sent[header] = rng.choice(["", "x" * 300, "%C3%A9t%C3%A9", "-1", "abc", "a b"])
            out.append(Request(family, op.http["method"], path, body if op.http["method"] != "GET" else b"", sent,
                               f"{name} {label}"))
    return out


def openapi_requests(spec: dict, rng: random.Random, per_route: int) -> list[Request]:
    """The gateway's native and Image Recognition routes (its OpenAPI), broken the same way."""
    out = []
    for template, methods in spec["paths"].items():
        if template in ("/health", "/ready", "/metrics") or template.startswith("/loupe/docs"):
            continue
        family = "huawei" if template.startswith(("/v1.0/", "/v2/", "/v3/")) else "native" if template.startswith("/loupe/") else None
        if family is None:
            continue  # AWS-style routes are fuzzed from botocore's models
        for method, operation in methods.items():
            query = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
            members = ["image", "url", "threshold", "limit", "language", "Name", "Description", "Source", "auth",
                       "HumanLoopActivationConditions", "Changes", "Label", "Username", "Password", "AccessKeyId"]
            for label, body in _bodies(rng, members, per_route):
                path = _fill(template, rng) + _query(rng, query)
                out.append(Request(family, method.upper(), path, body if method != "get" else b"",
                                   {"Content-Type": "application/json"}, f"{method.upper()} {template} {label}"))
    return out


def sign(request: Request, endpoint_url: str, token: str) -> tuple[str, dict[str, str]]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = endpoint_url + request.path
    if request.family == "huawei":
        return url, {**request.headers, "X-Auth-Token": token}
    service = "sagemaker" if request.family == "a2i" else "lookoutvision"
    signed = AWSRequest(method=request.method, url=url, data=request.body, headers=request.headers)
    SigV4Auth(Credentials(DEV_KEY, DEV_SECRET), service, REGION).add_auth(signed)
    return url, dict(signed.headers.items())


@dataclass
class Verdict:
    request: Request
    status: int
    problem: str | None  # None: answered as its API answers errors


def judge(request: Request, response: httpx.Response) -> Verdict:
    status = response.status_code

    def bad(problem: str) -> Verdict:
        return Verdict(request, status, f"{problem}: {response.text[:200]!r}")

    if status >= 500:
        return bad("5xx")
    if status < 400:
        return Verdict(request, status, None)
    try:
        body = response.json()
    except ValueError:
        if request.family == "native" and response.headers.get("content-type", "").startswith("text/html"):
            return Verdict(request, status, None)  # the review/console pages' own HTML
        return bad("error body is not JSON")
    if request.family == "huawei":
        if not response.headers.get("x-request-id"):
            return bad("no X-Request-Id")
        if not (isinstance(body, dict) and str(body.get("error_code", "")).startswith(("AIS.", "APIG.", "ModelArts."))
                and body.get("error_msg")):
            return bad("not a Huawei error body")
        return Verdict(request, status, None)
    if not response.headers.get("x-amzn-requestid"):
        return bad("no x-amzn-RequestId")
    if request.family == "native" and isinstance(body, dict) and "error_detail" in body:
        if body.get("request_id") != response.headers["x-amzn-requestid"]:
            return bad("envelope's request_id is not the header's")
        return Verdict(request, status, None)
    if isinstance(body, dict) and ("__type" in body or "message" in body or "Message" in body):
        return Verdict(request, status, None)
    return bad("not an error in the API's format")


def build(endpoint_url: str, count: int, seed: int) -> list[Request]:
    """About `count` requests: half over the AWS operations, the rest over native and Huawei routes."""
    rng = random.Random(seed)
    spec = httpx.get(endpoint_url + "/loupe/openapi.json", timeout=30).json()
    import botocore.session

    session = botocore.session.get_session()
    lookout_ops = len(session.get_service_model("lookoutvision").operation_names)
    a2i_ops = len(session.get_service_model("sagemaker-a2i-runtime").operation_names)
    routes = sum(1 for t, m in spec["paths"].items() if t.startswith(("/loupe/", "/v1.0/", "/v2/", "/v3/")) for _ in m)
    per_aws = max(1, (count // 2) // (lookout_ops + a2i_ops))
    per_route = max(1, (count - per_aws * (lookout_ops + a2i_ops)) // max(routes, 1))
    requests = aws_requests("lookoutvision", "lookout", rng, per_aws) + aws_requests("sagemaker-a2i-runtime", "a2i", rng, per_aws)
    requests += openapi_requests(spec, rng, per_route)
    rng.shuffle(requests)
    return requests


def run(endpoint_url: str, requests: list[Request], *, timeout: float, workers: int = 8) -> list[Verdict]:
    token = httpx.post(endpoint_url + "/v3/auth/tokens", json=IAM_BODY, timeout=30).headers["x-subject-token"]

    def send(request: Request) -> Verdict:
        url, headers = sign(request, endpoint_url, token)
        try:
            response = httpx.request(request.method, url, content=request.body, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            return Verdict(request, 0, f"no answer within {timeout} s")
        except httpx.HTTPError as error:
            return Verdict(request, 0, f"connection failed: {error}")
        return judge(request, response)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(send, requests))


def report(verdicts: list[Verdict]) -> str:
    by_family = {f: sum(v.request.family == f for v in verdicts) for f in FAMILIES}
    problems = [v for v in verdicts if v.problem]
    lines = [f"{len(verdicts)} requests ({', '.join(f'{k} {n}' for k, n in by_family.items())}); "
             f"{sum(v.status >= 500 for v in verdicts)} x 5xx, {sum(v.status == 0 for v in verdicts)} unanswered, "
             f"{len(problems)} problems"]
    lines += [f"  {v.status} {v.request.method} {v.request.path[:120]} [{v.request.label}]: {v.problem}" for v in problems[:40]]
    return "\n".join(lines)


def main() -> None:
    import argparse
    import tempfile

    from loupe_local.stack import Stack

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Stack.on_free_ports(Path(tmp)) as stack:
        requests = build(stack.endpoint_url, args.count, args.seed)
        began = time.perf_counter()
        verdicts = run(stack.endpoint_url, requests, timeout=60)
        print(report(verdicts))
        print(f"{time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
