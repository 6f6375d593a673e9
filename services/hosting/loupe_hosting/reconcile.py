"""The control loop: every heartbeat interval, expire silent workers, place units on live workers,
publish the assignment table, and move statuses (STARTING_HOSTING -> HOSTED when the units answer,
HOSTING_FAILED when a worker cannot load the model, STOPPING_HOSTING -> TRAINED when no worker
holds it any more).

After a restart the loop first listens to heartbeats for a few intervals (a table sent before it
knows the live workers would tell them to drop their units), and it regularly squares its
deployments with the statuses the training service keeps, so a crash between the two writes of a
StartModel or StopModel never leaves a version in a hosting status for good."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from loupe_common import training_messages as tm
from loupe_common.errors import LoupeError
from loupe_common.hosting_messages import (
    HOSTED,
    HOSTING_FAILED,
    STARTING,
    STOPPING,
    TRAINED,
    AssignmentTable,
    HostedModel,
)
from loupe_common.kafka import delete_topic, ensure_topics
from loupe_common.messages import Command
from loupe_common.topics import TRAINING_COMMANDS, model_key, model_request_topic

from .autoscale import Autoscaler
from .deployments import deployment, set_status, units_text, wanted_units
from .scheduler import assign
from .store import HostingState

log = logging.getLogger("loupe.hosting")
SQUARE_EVERY_SECONDS = 30.0


class Reconciler:
    def __init__(self, state: HostingState, publish: Callable[[AssignmentTable], Awaitable[None]]) -> None:
        self.state = state
        self.publish = publish
        self.generation = 0
        self.wake = asyncio.Event()
        self.autoscaler = Autoscaler(up_cooldown=state.settings.autoscale_up_cooldown_seconds,
                                     down_after=state.settings.autoscale_down_after_seconds)
        self.listen_until = time.monotonic() + 2.5 * state.settings.heartbeat_seconds
        self.squared_at = -SQUARE_EVERY_SECONDS
        self.set_aside: dict[str, str] = {}  # deployment -> the error last logged for it

    async def run(self) -> None:
        while True:
            try:
                await self.step()
            except Exception:  # keep controlling: one failed step must not stop hosting
                log.exception("reconcile step failed")
            try:
                await asyncio.wait_for(self.wake.wait(), self.state.settings.heartbeat_seconds)
            except TimeoutError:
                pass
            self.wake.clear()

    async def step(self) -> None:
        fleet = self.state.fleet
        for worker_id in fleet.expire(self.state.settings.worker_timeout_seconds):
            log.warning("inference worker %s stopped sending heartbeats; its units move to live workers",
                        worker_id)
        if time.monotonic() < self.listen_until:
            return
        if time.monotonic() - self.squared_at >= SQUARE_EVERY_SECONDS:
            await self.square_with_training()
            self.squared_at = time.monotonic()
        await self.autoscale()
        deployments = await self.publish_table()
        for key, doc in deployments.items():
            try:
                await self._advance(key, doc)
                self.set_aside.pop(key, None)
            except LoupeError as err:  # e.g. the version changed status meanwhile; next step retries
                log.info("status move for %s deferred: %s", key, err.error.message)
            except Exception as exc:  # noqa: BLE001 - one bad deployment must not stop the others
                text = f"{exc.__class__.__name__}: {exc}"
                if self.set_aside.get(key) != text:  # logged once, not every second
                    log.exception("deployment %s set aside: %s", key, text)
                    self.set_aside[key] = text

    async def square_with_training(self) -> None:
        """Make the deployments agree with the hosting statuses training keeps: a version training
        calls hosted (or stopping) gets the deployment it lacks; a deployment whose version training
        no longer calls hosted is stopped. Deployments are read before training is asked, so a
        StartModel running meanwhile is never taken for an orphan."""
        ours = {d["_id"]: d async for d in self.state.deployments.find({})}
        reply = await self.state.training.request(
            TRAINING_COMMANDS, tm.ListHostingVersions(request_id=f"hosting-square-{self.generation}"),
            key=None)
        theirs = {model_key(v.project_name, v.model_version): v
                  for v in map(tm.HostingVersion.model_validate, reply.unwrap()["versions"])}
        for key, version in theirs.items():
            if key in ours:
                if version.status == STOPPING and ours[key]["status"] in (STARTING, HOSTED):
                    await self.state.deployments.update_one({"_id": key, "status": ours[key]["status"]},
                                                            {"$set": {"status": STOPPING}})
                continue
            if not {"model.onnx", "model.json"} <= set(version.artifacts):
                continue
            units = (version.min_inference_units or 1, version.max_inference_units)
            doc = deployment(version.project_name, version.model_version, version.status, units,
                             version.artifacts, "Hosting resumed from the model's recorded status")
            if version.status != STOPPING:
                await ensure_topics(self.state.settings,
                                    [(doc["topic"], self.state.settings.topic_partitions)])
            await self.state.deployments.update_one({"_id": key}, {"$setOnInsert": doc}, upsert=True)
            log.warning("%s is %s but had no deployment; rebuilt it", key, version.status)
        for key, doc in ours.items():
            if key in theirs:
                continue
            if doc["status"] == STOPPING:  # stopped, but the deployment outlived it
                await self.state.deployments.delete_one({"_id": key, "status": STOPPING})
            elif doc["status"] in (STARTING, HOSTED):
                await self.state.deployments.update_one({"_id": key, "status": doc["status"]},
                                                        {"$set": {"status": STOPPING}})
            log.warning("%s had a %s deployment that its model's status does not show; removing it",
                        key, doc["status"])

    async def autoscale(self) -> None:
        """Move each hosted model's unit count within [MinInferenceUnits, MaxInferenceUnits]."""
        now = time.monotonic()
        async for doc in self.state.deployments.find({"status": HOSTED}):
            key = doc["_id"]
            self.autoscaler.observe(key, self.state.fleet.busy_shares(key))
            current = wanted_units(doc)
            # Beyond the live workers an added unit could not run anywhere.
            high = max(doc["min_units"],
                       min(doc.get("max_units") or doc["min_units"], len(self.state.fleet.live())))
            units = self.autoscaler.decide(key, current, doc["min_units"], high, now)
            if units != current:
                log.info("%s: %d -> %d inference units (units %.0f%% busy)", key, current, units,
                         100 * self.autoscaler.history[key].busy)
                await self.state.deployments.update_one({"_id": key, "status": HOSTED},
                                                        {"$set": {"units": units}})

    async def publish_table(self) -> dict[str, dict]:
        """Place units on live workers and publish the table; returns the deployments it used."""
        fleet = self.state.fleet
        deployments = {d["_id"]: d async for d in self.state.deployments.find({})}
        active = {k: d for k, d in deployments.items() if d["status"] in (STARTING, HOSTED)}
        fleet.placement = assign({k: wanted_units(d) for k, d in active.items()}, fleet.live(),
                                 fleet.placement)
        self.generation += 1
        await self.publish(AssignmentTable(
            generation=self.generation, sent_at=datetime.now(UTC),
            models={k: HostedModel(project_name=d["project_name"], model_version=d["model_version"],
                                   status=d["status"], topic=d["topic"], artifacts=d["artifacts"])
                    for k, d in active.items()},
            workers={w: sorted(keys) for w, keys in fleet.placement.items()},
        ))
        return deployments

    async def _advance(self, key: str, doc: dict) -> None:
        fleet = self.state.fleet
        live = len(fleet.live())
        if doc["status"] == STARTING:
            failures = fleet.failures(key)
            if failures:
                await self._move(doc, HOSTING_FAILED, [STARTING], f"Hosting failed: {failures[0]}")
                return
            ready = len(fleet.ready_units(key))
            if ready and ready >= min(doc["min_units"], live):
                await self._move(doc, HOSTED, [STARTING], self._serving_text(doc, ready))
            elif not live:
                await self._note(doc, "Waiting for an inference worker to start")
        elif doc["status"] == HOSTED:
            ready = len(fleet.ready_units(key))
            await self._note(doc, self._serving_text(doc, ready))
        elif doc["status"] == STOPPING and not fleet.holders(key):
            self.autoscaler.forget(key)
            await self._remove_topic(doc)
            await self._move(doc, TRAINED, [STOPPING], "Hosting stopped")
            await self.state.deployments.delete_one({"_id": key, "status": STOPPING})

    @staticmethod
    def _serving_text(doc: dict, ready: int) -> str:
        wanted = wanted_units(doc)
        if ready >= wanted:
            high = doc.get("max_units") or doc["min_units"]
            scaling = (f" (scales between {doc['min_units']} and {high} with load)"
                       if high > doc["min_units"] else "")
            return f"Hosted on {units_text(ready)}{scaling}"
        if ready == 0:
            return f"Hosted, but no inference unit is serving it now (wanted {wanted}); requests wait for one"
        return f"Hosted on {ready} of {units_text(wanted)} (not enough live inference workers for the rest)"

    async def _remove_topic(self, doc: dict) -> None:
        """No unit reads the version's request topic any more: delete it, or every model ever hosted
        would leave one behind. Before TRAINED, so a new StartModel cannot race the deletion (it
        creates the topic again). A failure only leaves the topic behind."""
        topic = doc.get("topic") or model_request_topic(doc["project_name"], doc["model_version"])
        try:
            await delete_topic(self.state.settings, topic)
        except Exception as exc:  # noqa: BLE001 - the broker unreachable: the topic stays, harmlessly
            log.warning("could not delete %s (%s); it stays", topic, exc.__class__.__name__)

    async def _note(self, doc: dict, message: str) -> None:
        """Keep DescribeModel's StatusMessage true to what is serving, without changing the status."""
        if doc.get("status_message") == message:
            return
        await self._move(doc, doc["status"], [doc["status"]], message)

    async def _move(self, doc: dict, status: str, from_statuses: list[str], message: str) -> None:
        await self.state.deployments.update_one({"_id": doc["_id"]},
                                                {"$set": {"status": status, "status_message": message}})
        if status == HOSTED and doc["status"] != HOSTED:
            # Workers and gateways learn HOSTED before DescribeModel says so: a caller that saw
            # HOSTED finds the model routable.
            await self.publish_table()
            await asyncio.sleep(2 * self.state.settings.kafka_idle_fetch_max_wait_ms / 1000)
        cmd = Command(request_id=f"hosting-{self.generation}")
        await set_status(self.state, cmd, doc["project_name"], doc["model_version"], status, from_statuses,
                         message)
        if status != doc["status"]:
            log.info("%s: %s -> %s (%s)", doc["_id"], doc["status"], status, message)
