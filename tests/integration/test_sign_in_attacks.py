"""Online attacks on the three password sign-ins (IAM tokens, the reviewer page, the web console),
on a system of their own: guessing is slowed with each API's own throttling answer, an outsider
cannot lock a reviewer out, the answers do not tell which names exist, cookie sessions refuse
other origins, and cookies are Secure behind HTTPS. Each test speaks from its own loopback
address (127.0.0.x), as attackers and owners would from their own machines."""

from __future__ import annotations

import json

import httpx
import pytest

from helpers import DEV_KEY, DEV_SECRET, IAM_BODY, signed_request
from loupe_gateway.sign_in_guard import PER_PAIR, PER_SOURCE

PASSWORD = "correct horse battery"
REAL = IAM_BODY["auth"]["identity"]["password"]["user"]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory):
    from loupe_local.stack import Stack

    with Stack.on_free_ports(tmp_path_factory.mktemp("sign-in-stack"), services=("human_loop",)) as stack:
        yield stack


def from_address(stack, address: str) -> httpx.Client:
    return httpx.Client(base_url=stack.endpoint_url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address))


def token(client: httpx.Client, user: str, password: str) -> httpx.Response:
    body = json.loads(json.dumps(IAM_BODY))
    body["auth"]["identity"]["password"]["user"] |= {"name": user, "password": password}
    return client.post("/v3/auth/tokens", json=body)


def add_reviewer(stack, name: str) -> None:
    created = signed_request(stack.endpoint_url, "POST", "/loupe/v1/reviewers",
                             body=json.dumps({"username": name, "password": PASSWORD}).encode(),
                             headers={"Content-Type": "application/json"})
    assert created.status_code == 200, created.text


def test_token_guessing_is_throttled_for_any_name_and_the_owner_elsewhere_gets_in(guarded):
    attacker, owner = from_address(guarded, "127.0.0.11"), from_address(guarded, "127.0.0.12")
    for name in (REAL["name"], "no-such-user"):
        answers = [token(attacker, name, "guess") for _ in range(PER_PAIR + 1)]
        assert [r.json()["error_code"] for r in answers] == ["APIG.0301"] * PER_PAIR + ["APIG.0308"], name
        assert "Too many failed sign-ins" in answers[-1].json()["error_msg"] and answers[-1].headers["x-request-id"]
    assert token(attacker, REAL["name"], REAL["password"]).json()["error_code"] == "APIG.0308"  # even when right
    assert token(owner, REAL["name"], REAL["password"]).status_code == 201


def test_an_outsider_cannot_lock_a_reviewer_out(guarded):
    add_reviewer(guarded, "rhea")
    attacker, owner = from_address(guarded, "127.0.0.21"), from_address(guarded, "127.0.0.22")

    def sign_in(client: httpx.Client, user: str, password: str) -> httpx.Response:
        return client.post("/loupe/review/api/session", json={"username": user, "password": password})

    wrong = [sign_in(attacker, "rhea", "guess") for _ in range(PER_PAIR)]
    unknown = [sign_in(attacker, "nobody-here", "guess") for _ in range(PER_PAIR)]
    assert {r.json()["error_detail"]["message"] for r in wrong + unknown} == {"Wrong user name or password"}
    for user in ("rhea", "nobody-here"):  # the same answer whether the name exists or not
        slowed = sign_in(attacker, user, PASSWORD)
        assert slowed.status_code == 503 and slowed.json()["error_detail"]["code"] == "AI_SERVICE_FLOW_RESTRICTION"
    assert sign_in(owner, "rhea", PASSWORD).status_code == 200  # rhea, from her own desk


def test_cookie_sessions_refuse_other_origins_and_are_secure_behind_https(guarded):
    add_reviewer(guarded, "otto")
    client = from_address(guarded, "127.0.0.31")
    behind_tls = client.post("/loupe/review/api/session", json={"username": "otto", "password": PASSWORD},
                             headers={"X-Forwarded-Proto": "https"})
    assert behind_tls.status_code == 200, behind_tls.text
    cookie = behind_tls.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    plain = client.post("/loupe/review/api/session", json={"username": "otto", "password": PASSWORD})
    assert "secure" not in plain.headers["set-cookie"].lower()
    client.cookies.set("loupe_review", plain.cookies["loupe_review"])
    foreign = client.post("/loupe/review/api/flows/f/claim", json={}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403 and foreign.json()["error_detail"]["code"] == "AI_SERVICE_UNAUTHORIZED"
    assert client.request("DELETE", "/loupe/review/api/session", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/loupe/review/api/session").status_code == 200  # still signed in


def test_one_address_guessing_many_names_waits_everywhere(guarded):
    attacker, owner = from_address(guarded, "127.0.0.41"), from_address(guarded, "127.0.0.42")
    for i in range(PER_SOURCE):
        attacker.post("/loupe/console/api/session", json={"accessKeyId": f"AKIA{i:012d}", "secretAccessKey": "guess"})
    good = {"accessKeyId": DEV_KEY, "secretAccessKey": DEV_SECRET}
    slowed = attacker.post("/loupe/console/api/session", json=good)
    assert slowed.status_code == 503 and slowed.json()["error_detail"]["code"] == "AI_SERVICE_FLOW_RESTRICTION"
    assert "Too many failed sign-ins" in slowed.json()["error_detail"]["message"]
    assert owner.post("/loupe/console/api/session", json=good).status_code == 200
