"""predict's calibration as the reports read it, whichever shape the manifest holds.

`phases.predict.outputs.calibration` is `{target, points: [{load, predicted, observed}],
ratio, within_2x}` (with, newer, `smallest_reproducing_burst: {predicted, observed, sizes,
within_one_step}`), or, written by an older heisen, `{run, latency_scale, compared: [{phase,
load, predicted, observed, ratio}]}`. Both parse through the typed `Calibration` and
`CalibrationPoint` of `heisen.outputs`; a key one shape lacks reads None, never 0, and a
calibration that does not parse is not drawn rather than drawn wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from heisen.manifest import RunManifest
from heisen.outputs import Calibration, CalibrationPoint

__all__ = ["CalibratedBurst", "CalibrationView", "calibration"]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class CalibratedBurst:
    """The calibrated model's smallest reproducing burst beside the one the sweep found (None:
    not said, or none found)."""

    predicted: int | None
    observed: int | None
    within_one_step: bool | None
    up_to: int | None = None  # the largest burst size the sweep could try

    def line(self) -> str:
        said = {None: "", True: " (within one sweep step)", False: " (not within one sweep step)"}
        return (
            f"smallest burst {self.predicted if self.predicted is not None else 'none'} predicted"
            f" vs {self.observed if self.observed is not None else 'none'} observed"
            + said[self.within_one_step]
        )


@dataclass(frozen=True, slots=True)
class CalibrationView:
    """predict's calibration, as either shape reads: `{target, points, ratio, within_2x}` or
    the older `{run, latency_scale, compared}` (`ratio` and `within_2x` None where not said)."""

    target: str | None
    points: tuple[CalibrationPoint, ...]
    ratio: float | None
    within_2x: bool | None
    burst: CalibratedBurst | None = None

    def point_ratio(self, point: CalibrationPoint) -> float | None:
        if point.ratio is not None:
            return float(point.ratio)
        return float(point.predicted) / float(point.observed) if point.observed else None


def calibration(manifest: RunManifest) -> CalibrationView | None:
    """predict's `calibration:` with at least one point (None: predict was not calibrated, or
    wrote a calibration this report cannot read)."""
    record = manifest.phases.get("predict")
    raw = (record.outputs or {}).get("calibration") if record is not None else None
    if not isinstance(raw, Mapping):
        return None
    try:
        data = Calibration.from_manifest(raw).model_dump(mode="json", by_alias=True)
        listed = data.get("points") if data.get("points") is not None else data.get("compared")
        points = tuple(
            CalibrationPoint.from_manifest(point)
            for point in (listed if isinstance(listed, list) else [])
            if isinstance(point, Mapping)
        )
    except ValidationError:
        return None
    if not points:
        return None
    target, within = data.get("target"), data.get("within_2x")
    return CalibrationView(
        target if isinstance(target, str) else None,
        points,
        _number(data.get("ratio")),
        within if isinstance(within, bool) else None,
        _calibrated_burst(data.get("smallest_reproducing_burst")),
    )


def _calibrated_burst(data: object) -> CalibratedBurst | None:
    """`smallest_reproducing_burst: {predicted, observed, within_one_step}` of a calibration,
    read tolerantly (the key is newer than the calibration's points)."""
    if not isinstance(data, Mapping):
        return None
    predicted, observed, within = (
        data.get(key) for key in ("predicted", "observed", "within_one_step")
    )

    def size(value: object) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    if size(predicted) is None and size(observed) is None:
        return None
    sizes = data.get("sizes")
    largest = (
        max((v for v in sizes if size(v) is not None), default=None)
        if isinstance(sizes, list)
        else None
    )
    return CalibratedBurst(
        size(predicted), size(observed), within if isinstance(within, bool) else None, largest
    )
