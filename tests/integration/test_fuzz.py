"""A seeded few thousand malformed, correctly signed requests over every route family (Lookout for
Vision and A2I operations from botocore's models, the Loupe-native and Image Recognition routes from
the gateway's OpenAPI) on a system of their own: no 5xx, no request left unanswered, every error
in its API's own format with its request id. tests/fuzzing.py runs longer ones as a script."""

from __future__ import annotations

import pytest

from fuzzing import build, report, run

COUNT = 3200
SEED = 20261207


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    from loupe_local.stack import Stack

    with Stack.on_free_ports(tmp_path_factory.mktemp("fuzz-stack"),
                             extra_env={"LOUPE_REQUEST_TIMEOUT_SECONDS": "20"}) as stack:
        yield stack


def test_malformed_requests_get_errors_in_their_apis_format(fuzz_stack):
    requests = build(fuzz_stack.endpoint_url, COUNT, SEED)
    assert len(requests) >= 3000 and {r.family for r in requests} == {"lookout", "a2i", "native", "huawei"}
    verdicts = run(fuzz_stack.endpoint_url, requests, timeout=45)  # the request timeout is 20 s
    assert not [v for v in verdicts if v.problem], report(verdicts)
