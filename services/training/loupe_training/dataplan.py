"""Which images train and which test a model version, decided before training starts so that a
dataset too small is refused at CreateModel (ValidationException), not an hour later.

- train dataset only: split it, stratified and deterministic (by a hash of each source-ref and
  the model version), into train and test;
- train + test datasets: train on train, evaluate on test.
Anomalous images are optional: at least 10 normal images train a model (Lookout needed 20 + 10).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from loupe_common.errors import ResourceType, conflict, validation
from loupe_common.lookout import BUSY_DATASET_STATUSES, DatasetStatus

MIN_TRAIN_NORMAL = 10
MIN_TEST_NORMAL_IN_SPLIT = 2
TEST_SHARE = 0.2
USABLE = {DatasetStatus.CREATE_COMPLETE, DatasetStatus.UPDATE_COMPLETE,
          DatasetStatus.UPDATE_FAILED_ROLLBACK_COMPLETE}


@dataclass(frozen=True)
class DataPlan:
    separate_test: bool
    train_normal: int
    train_anomaly: int
    test_normal: int
    test_anomaly: int

    def describe(self) -> str:
        source = "the test dataset" if self.separate_test else "a split of the train dataset"
        return (f"training on {self.train_normal} normal images"
                + (f" and {self.train_anomaly} anomalous" if self.train_anomaly else "")
                + f", testing on {self.test_normal} normal and {self.test_anomaly} anomalous images "
                  f"from {source}")


def plan(project: str, datasets: dict[str, dict]) -> DataPlan:
    """datasets: {"train": {"status", "stats": {total, labeled, normal, anomaly}}, "test": ...}."""
    train = datasets.get("train")
    if train is None:
        raise validation(f"Project {project} has no train dataset; create one with CreateDataset")
    for kind, dataset in datasets.items():
        if dataset["status"] in BUSY_DATASET_STATUSES:
            raise conflict(ResourceType.DATASET, f"{project}/{kind}",
                           f"The {kind} dataset is {dataset['status']}; wait until it finishes")
        if dataset["status"] not in USABLE:
            raise validation(
                f"The {kind} dataset is {dataset['status']}: {dataset.get('status_message') or ''}".strip())
    normal, anomaly = train["stats"]["normal"], train["stats"]["anomaly"]
    test = datasets.get("test")
    if test is not None:
        if normal < MIN_TRAIN_NORMAL:
            raise validation(f"The train dataset has {normal} normal images; "
                             f"at least {MIN_TRAIN_NORMAL} are needed")
        if test["stats"]["labeled"] < 1:
            raise validation("The test dataset has no labelled images to evaluate the model on")
        return DataPlan(True, normal, anomaly, test["stats"]["normal"], test["stats"]["anomaly"])
    test_normal = max(MIN_TEST_NORMAL_IN_SPLIT, round(TEST_SHARE * normal))
    needed = MIN_TRAIN_NORMAL + MIN_TEST_NORMAL_IN_SPLIT
    if normal - test_normal < MIN_TRAIN_NORMAL:
        raise validation(
            f"The train dataset has {normal} normal images; a single dataset needs at least {needed} "
            f"({MIN_TRAIN_NORMAL} to train, the rest to test), or add a test dataset"
        )
    test_anomaly = anomaly - anomaly // 2 if anomaly else 0  # half, rounding up, so recall is measured
    return DataPlan(False, normal - test_normal, anomaly - test_anomaly, test_normal, test_anomaly)


def split(entries: list[dict], plan: DataPlan, salt: str) -> tuple[list[dict], list[dict]]:
    """Deterministic stratified split of one dataset's labelled entries into (train, test)."""
    def order(entry: dict) -> str:
        return hashlib.sha256(f"{salt}|{entry['source_ref']}".encode()).hexdigest()

    normal = sorted((e for e in entries if e["label"] == 0), key=order)
    anomalous = sorted((e for e in entries if e["label"] == 1), key=order)
    test = normal[: plan.test_normal] + anomalous[: plan.test_anomaly]
    train = normal[plan.test_normal :] + anomalous[plan.test_anomaly :]
    return train, test
