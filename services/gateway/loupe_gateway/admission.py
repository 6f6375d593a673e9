"""Admission control for DetectAnomalies: a model's queue may not grow deeper than its inference
units can answer in time.

Each gateway process counts the detections it has in flight per model and keeps a moving average
of the workers' own time per image (the reply's elapsed time, not the round trip, which grows
with the queue itself). A new image is admitted while the images ahead of it would be answered
within half the detect timeout: in flight < units x (timeout / 2) / time per image, and always at
least MIN_PER_UNIT per unit. Past that the caller gets ThrottlingException (429, Retry-After) at
once instead of waiting behind, say, four 4096 x 4096 images for 18 s. With N gateway replicas
each admits its share, so a model may hold N times as many.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_PER_UNIT = 2
SMOOTHING = 0.2  # weight of the newest image in the moving average


@dataclass
class DetectAdmission:
    timeout_seconds: float
    in_flight: dict[str, int] = field(default_factory=dict)
    seconds_per_image: dict[str, float] = field(default_factory=dict)

    def limit(self, model: str, units: int) -> float:
        per_image = self.seconds_per_image.get(model)
        units = max(units, 1)
        if per_image is None:  # nothing measured yet: nothing to judge by
            return float("inf")
        return max(MIN_PER_UNIT * units, units * (self.timeout_seconds / 2) / max(per_image, 1e-3))

    def admit(self, model: str, units: int) -> bool:
        if self.in_flight.get(model, 0) >= self.limit(model, units):
            return False
        self.in_flight[model] = self.in_flight.get(model, 0) + 1
        return True

    def done(self, model: str, worker_ms: float | None) -> None:
        self.in_flight[model] = max(0, self.in_flight.get(model, 0) - 1)
        if worker_ms is not None and worker_ms > 0:
            seconds = worker_ms / 1000
            before = self.seconds_per_image.get(model)
            self.seconds_per_image[model] = (seconds if before is None
                                             else before + SMOOTHING * (seconds - before))
