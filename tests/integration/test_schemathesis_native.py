"""Schemathesis over the gateway's own OpenAPI (/loupe/openapi.json as the shared test system serves
it), limited to the Loupe-native /loupe/v1 routes: no 5xx, no request left unanswered, every error
in the AILabTools envelope with its request id (tests/fuzzing.py's judgement, reused).

Each operation gets three kinds of case from its schema: conforming ones, violating ones (where the
schema has something to violate: typed query and path parameters), and conforming ones whose path
names this test's own project and well-formed names, so that they pass name validation and reach
the services. Every request is SigV4-signed with the development keys as it is sent. Seeded, with no
Hypothesis example database and no shrinking: the same requests on every run, in bounded time.

Generated calls cannot touch what other tests made: a call that is not a GET has every path
parameter prefixed with this test's project name, so a DELETE names only things of its own; the
reviewers and flow definitions of others must be the same after the run as before it.

A problem is reported as the signed request to replay, e.g. with
helpers.signed_request(stack.endpoint_url, "GET", "/loupe/v1/ingest/151928/6327/image").

schemathesis.pytest.from_fixture (a schema loaded by a fixture, as this one must be: the system
starts with the session) does not run under pytest 9.2 (it sets Function._nodeid, which pytest 9.2
no longer has), so the cases come from each operation's Hypothesis strategy here."""

from __future__ import annotations

import time
import urllib.parse
import zlib

import httpx
import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from requests.auth import AuthBase
from schemathesis import GenerationMode

from fuzzing import Request, judge
from helpers import DEV_KEY, DEV_SECRET, REGION, signed_request

SEED = 20261207
OWNED = "schemathesis-native"  # this test's project, and the prefix of every name a mutating call uses
NATIVE = r"^/loupe/v1/"
TIMEOUT = 30.0  # seconds; the test system's request timeout is 20 s (LOUPE_REQUEST_TIMEOUT_SECONDS)
EXAMPLES = {"positive": 15, "negative": 15, "well-named": 8}  # per operation
# Well-formed path parameters: this test's project (and names it owns), a model version, a dataset.
WELL_NAMED = {"project_name": OWNED, "model_version": "1", "dataset_type": "train", "name": OWNED,
              "username": OWNED, "job_name": OWNED}
# GET /loupe/v1/ingest/{partition}/{offset}/image holds a Kafka consumer for 5 s whenever the broker
# has the partition but no record at the offset: few examples.
SLOW = {"GET /loupe/v1/ingest/{partition}/{offset}/image": 3}


class SigV4(AuthBase):
    """Signs the request as it is sent: after requests has prepared its URL, headers and body. A space
    in the query goes as %20, as the AWS SDKs send it (requests writes `+`, which the two sides of
    SigV4 canonicalise differently: botocore keeps it, the gateway encodes it, as AWS does)."""

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        url = urllib.parse.urlsplit(prepared.url)
        prepared.url = url._replace(query=url.query.replace("+", "%20")).geturl()
        body = prepared.body or b""
        aws = AWSRequest(method=prepared.method, url=prepared.url, headers=dict(prepared.headers),
                         data=body.encode() if isinstance(body, str) else body)
        SigV4Auth(Credentials(DEV_KEY, DEV_SECRET), "lookoutvision", REGION).add_auth(aws)
        prepared.headers.update(dict(aws.headers.items()))
        return prepared


def _others(endpoint_url: str) -> dict[str, list[str]]:
    """What the generated calls must leave alone: every reviewer and flow definition not of this test."""
    found = {}
    for path, key, name in (("/loupe/v1/reviewers", "reviewers", "username"),
                            ("/loupe/v1/flow-definitions", "FlowDefinitions", "FlowDefinitionName")):
        response = signed_request(endpoint_url, "GET", path)
        assert response.status_code == 200, response.text
        names = (item[name] for item in response.json()["data"][key])
        found[key] = sorted(n for n in names if not n.startswith(OWNED))
    return found


def _own(case: schemathesis.Case) -> None:
    """A call that is not a GET names only this test's things: its path parameters, and the names a
    JSON body gives to what it creates (should the OpenAPI come to describe those bodies)."""
    if case.method == "GET":
        return
    case.path_parameters = {name: value if str(value).startswith(OWNED) else f"{OWNED}{value}"
                            for name, value in (case.path_parameters or {}).items()}
    if isinstance(case.body, dict):
        for field in ("username", "FlowDefinitionName"):
            if field in case.body:
                case.body[field] = f"{OWNED}{case.body[field]}"


def _check(case: schemathesis.Case, session: requests.Session) -> str | None:
    """None, or what is wrong with the answer to `case` (after `case`'s request, as sent)."""
    _own(case)
    began = time.monotonic()
    try:
        response = case.call(session=session, timeout=TIMEOUT)
    except requests.Timeout:
        return f"no answer within {TIMEOUT:.0f} s: {case.method} {case.formatted_path}"
    except requests.RequestException as error:
        return f"connection failed ({error}): {case.method} {case.formatted_path}"
    took = time.monotonic() - began
    sent = f"{case.method} {response.request.path_url}" + (f" body {response.request.body[:200]!r}"
                                                            if response.request.body else "")
    if took >= TIMEOUT:
        return f"answered after {took:.1f} s: {sent}"
    answer = httpx.Response(response.status_code, content=response.content,
                            headers=[(k, v) for k, values in response.headers.items() for v in values])
    verdict = judge(Request("native", case.method, response.request.path_url), answer)
    problem = verdict.problem or _envelope_problem(answer)
    if problem:
        return f"{response.status_code} {problem}\n    {sent}"
    return None


def _envelope_problem(answer: httpx.Response) -> str | None:
    """What judge() lets pass on a native route but /loupe/v1 must not: an answer without a request id,
    an error in AWS's format or in HTML rather than the envelope, and a refused signature (every
    request here is signed correctly: a refusal means the fuzzing never got past the signature)."""
    if not answer.headers.get("x-amzn-requestid"):
        return "no x-amzn-RequestId"
    if answer.status_code < 400:
        return None
    try:
        body = answer.json()
    except ValueError:
        return f"error body is not JSON: {answer.text[:200]!r}"  # judge() lets HTML pass for /loupe/review
    if not (isinstance(body, dict) and isinstance(body.get("error_detail"), dict)
            and body.get("error_code") == answer.status_code == body["error_detail"].get("status_code")):
        return f"not the AILabTools envelope: {answer.text[:200]!r}"
    if body["error_detail"].get("code") == "AI_SERVICE_UNAUTHORIZED":
        return f"the signature was refused (the test signs wrongly): {answer.text[:200]!r}"
    return None


def _strategy(operation, kind: str):
    if kind == "well-named":
        names = {p.name for p in operation.path_parameters}
        return operation.as_strategy(path_parameters={k: v for k, v in WELL_NAMED.items() if k in names})
    return operation.as_strategy(generation_mode=GenerationMode(kind))


def _run(operation, kind: str, session: requests.Session) -> tuple[int, list[str]]:
    """(requests sent, problems) for the cases of one kind of one operation."""
    sent, problems = [0], []
    examples = min(EXAMPLES[kind], SLOW.get(operation.label, EXAMPLES[kind]))

    @hypothesis.seed(SEED + zlib.crc32(f"{operation.label} {kind}".encode()))
    @hypothesis.settings(max_examples=examples, database=None, derandomize=False, deadline=None,
                         phases=[Phase.explicit, Phase.generate], print_blob=False,
                         suppress_health_check=list(HealthCheck))
    @hypothesis.given(case=_strategy(operation, kind))
    def send(case: schemathesis.Case) -> None:
        sent[0] += 1
        problem = _check(case, session)
        if problem:
            problems.append(f"{operation.label} ({kind}): {problem}")

    try:
        send()
    except Unsatisfiable:
        pass  # nothing in this operation's schema can be violated
    return sent[0], problems


def test_native_routes_answer_in_their_format(stack, lookout):
    try:
        lookout.create_project(ProjectName=OWNED)
    except lookout.exceptions.ConflictException:
        pass  # made by an earlier run on the same system
    before = _others(stack.endpoint_url)
    config = schemathesis.Config.from_dict({"base-url": stack.endpoint_url, "request-timeout": TIMEOUT})
    schema = schemathesis.openapi.from_url(f"{stack.endpoint_url}/loupe/openapi.json", config=config,
                                           timeout=30).include(path_regex=NATIVE)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]

    counts, problems = {}, []
    with requests.Session() as session:
        session.auth = SigV4()
        for operation in operations:
            began, sent = time.monotonic(), []
            for kind in EXAMPLES:
                if kind == "well-named" and (operation.label in SLOW or not operation.path_parameters):
                    continue
                n, found = _run(operation, kind, session)
                sent.append(f"{n} {kind}")
                problems += found
            counts[operation.label] = f"{', '.join(sent)} in {time.monotonic() - began:.1f} s"

    assert _others(stack.endpoint_url) == before
    summary = f"{len(operations)} operations:\n" + "\n".join(f"  {label}: {n}" for label, n in counts.items())
    assert not problems, f"{len(problems)} problems; {summary}\n" + "\n".join(problems[:40])
    print(summary)
