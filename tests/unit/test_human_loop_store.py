"""The human-loop service's handlers on the embedded document store (no broker needed: these are
the rules that decide state, with events collected in a list): completion that a crash or a lost
race cut short, expiry that must not take an answered loop, a queue deeper than any scan window,
skips and file access that need a claim, sign-in lock-out."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from mongomock_motor import AsyncMongoMockClient

from loupe_common import human_loop_messages as m
from loupe_common.blobs import LocalBlobStore
from loupe_common.buckets import BucketRoot
from loupe_common.errors import ErrorCode, LoupeError
from loupe_common.settings import Settings
from loupe_human_loop import completion, loops, review
from loupe_human_loop.store import HumanLoopState, now

PASSWORD = "long-enough-1"


@pytest.fixture
def state(tmp_path: Path) -> HumanLoopState:
    events: list[dict] = []

    async def publish(name: str, data: dict) -> None:
        events.append(data)

    s = HumanLoopState(settings=Settings(), db=AsyncMongoMockClient(tz_aware=True)["t"],
                       blobs=LocalBlobStore(tmp_path / "blobs"), buckets=BucketRoot(tmp_path / "s3"), rpc=None,
                       publish_event=publish, activations_changed=lambda: None, keys_changed=lambda: None)
    s.events = events  # type: ignore[attr-defined]
    return s


def run(coro):
    return asyncio.run(coro)


async def flow(state: HumanLoopState, task_count: int = 1) -> str:
    from loupe_human_loop import flows

    spec = m.FlowDefinitionSpec.model_validate({"FlowDefinitionName": "f", "HumanLoopConfig": {
        "TaskTitle": "T", "TaskDescription": "D", "TaskCount": task_count}})
    return (await flows.create(state, m.CreateFlowDefinition(request_id="r", spec=spec))).result["FlowDefinitionArn"]


async def start(state: HumanLoopState, arn: str, name: str) -> None:
    (await loops.start(state, m.StartHumanLoop(request_id="r", human_loop_name=name, flow_definition_arn=arn,
                                               input_content=json.dumps({"n": name})))).unwrap()


async def signed_in(state: HumanLoopState, who: str) -> str:
    await review.create_reviewer(state, m.CreateReviewer(request_id="r", username=who, password=PASSWORD))
    return (await review.sign_in(state, m.SignIn(request_id="r", username=who, password=PASSWORD))).result["session"]


def test_an_answered_loop_whose_completion_was_cut_short_completes_on_the_next_sweep(state, tmp_path):
    async def scenario() -> dict:
        arn = await flow(state)
        await start(state, arn, "cut-short")
        # The last answer is stored but the process died before completing (or lost a race).
        await state.loops.update_one({"_id": "cut-short"}, {"$set": {
            "answers": [{"answerContent": {"anomaly": {"label": "normal"}}, "acceptanceTime": now(),
                         "submissionTime": now(), "timeSpentInSeconds": 1.0, "workerId": "ann"}],
            "complete_pending": True, "expires_at": now() - timedelta(seconds=1)}})
        await loops.sweep(state)  # expiry must leave it alone
        assert (await state.loops.find_one({"_id": "cut-short"}))["status"] == m.IN_PROGRESS
        await completion.complete_answered(state)
        return await state.loops.find_one({"_id": "cut-short"})

    loop = run(scenario())
    assert loop["status"] == m.COMPLETED and loop["consolidated"]["label"] == "normal"
    output = json.loads((tmp_path / "s3" / loop["output_s3_uri"].removeprefix("s3://")).read_text())
    assert output["humanAnswers"][0]["workerId"] == "ann"
    assert [e["HumanLoopStatus"] for e in state.events] == ["InProgress", "Completed"]


def test_claims_reach_past_many_loops_the_reviewer_already_answered(state):
    async def scenario() -> dict | None:
        arn = await flow(state)
        session = await signed_in(state, "ann")
        for i in range(620):
            await start(state, arn, f"loop-{i:04d}")
        await state.loops.update_many({"_id": {"$ne": "loop-0619"}}, {"$set": {"answers": [{"workerId": "ann"}]}})
        return (await review.claim(state, m.ClaimTask(request_id="r", session=session,
                                                      flow_definition_name="f"))).result["task"]

    assert run(scenario())["human_loop_name"] == "loop-0619"


def test_skips_and_files_need_the_claim(state):
    async def scenario() -> None:
        arn = await flow(state)
        await start(state, arn, "held")
        ann, ben = await signed_in(state, "ann"), await signed_in(state, "ben")
        await review.claim(state, m.ClaimTask(request_id="r", session=ann, flow_definition_name="f"))
        with pytest.raises(LoupeError) as refused:
            await review.skip(state, m.SkipTask(request_id="r", session=ben, human_loop_name="held"))
        assert refused.value.error.code is ErrorCode.CONFLICT
        await state.loops.update_one({"_id": "held"}, {"$set": {"task.image_key": "human-loops/held/image"}})
        with pytest.raises(LoupeError) as hidden:
            await review.task_file(state, m.TaskFile(request_id="r", session=ben, human_loop_name="held", which="image"))
        assert hidden.value.error.code is ErrorCode.NOT_FOUND
        found = await review.task_file(state, m.TaskFile(request_id="r", session=ann, human_loop_name="held",
                                                         which="image"))
        assert found.result["key"] == "human-loops/held/image"
        await review.skip(state, m.SkipTask(request_id="r", session=ann, human_loop_name="held"))
        task = (await review.claim(state, m.ClaimTask(request_id="r", session=ann, flow_definition_name="f"))).result
        assert task["task"] is None  # a skip sticks for the one who skipped

    run(scenario())


def test_wrong_passwords_do_not_lock_the_reviewer_out(state):
    """An outsider's guesses must not lock the real reviewer out (the gateway slows the guesser)."""
    async def scenario() -> None:
        await signed_in(state, "ann")
        for name in ("ann", "nobody"):
            for _ in range(8):
                with pytest.raises(LoupeError, match="^Wrong user name or password$"):  # the same for both names
                    await review.sign_in(state, m.SignIn(request_id="r", username=name, password="wrong-password"))
        assert (await review.sign_in(state, m.SignIn(request_id="r", username="ann", password=PASSWORD))).result["session"]

    run(scenario())
