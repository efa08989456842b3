"""What each toxic does to one direction of one connection.

Design
------
A direction of a link carries *segments*: `(release_time, item)` pairs where
`item` is a chunk of bytes or a `Mark` (end of stream, close, ...). When the
proxy reads a chunk at loop time `t`, it becomes the segment `(t, chunk)` and
passes through the direction's active toxics in the order they were added;
each toxic maps a list of segments to a list of segments:

- latency adds a sampled delay to a chunk's release time;
- bandwidth cuts a chunk into 20 ms pieces and releases each when the link,
  at `rate`, would have finished sending it;
- slicer cuts a chunk into pieces of `average_size ± size_variation` bytes,
  `delay` µs apart;
- limit_data lets `bytes` through, then closes the link;
- timeout swallows everything (data and end of stream);
- slow_close delays end-of-stream marks;
- reset_peer passes data and only arms a timer.

Invariant: every toxic emits release times that never decrease, given input
that never decreases. The pipe then holds the result in a FIFO queue and
writes each item when its time comes, so bytes keep their order however the
delays were drawn, and no read ever waits on a sleep. Because times are fixed
when a chunk is read, a change of toxic applies to data read after it and
leaves data already queued alone.

Timers that do not depend on data (timeout's close, reset_peer's RST) are
exposed as `timer` and armed by the pipe when the toxic becomes active for
the connection, and disarmed if it is removed first.

To add a toxic type: an attributes model in `_toxics`, a `ToxicRun` subclass
here keeping the invariant, and one line in `make_run`.
"""

from __future__ import annotations

import enum
import random

from heisen.system._toxics import (
    BandwidthAttributes,
    LatencyAttributes,
    LimitDataAttributes,
    ResetPeerAttributes,
    SlicerAttributes,
    SlowCloseAttributes,
    TimeoutAttributes,
    ToxicSpec,
    ToxicType,
    make_delay_sampler,
)


class Mark(enum.Enum):
    EOF = "eof"  # the source finished sending: half-close the destination
    DONE = "done"  # the direction is finished without telling the destination
    CLOSE = "close"  # close the whole link


class Action(enum.StrEnum):
    CLOSE = "close"
    RESET = "reset"


Item = bytes | Mark
Segment = tuple[float, Item]


class ToxicRun:
    """Per-connection, per-direction state of one toxic. Subclasses keep release times monotone."""

    timer: tuple[float, Action] | None = None

    def __init__(self, spec: ToxicSpec) -> None:
        self.spec = spec
        self.last = 0.0

    def apply(self, segments: list[Segment]) -> list[Segment]:
        out: list[Segment] = []
        for t, item in segments:
            t = max(t, self.last)
            self.last = t
            out.append((t, item))
        return out


class LatencyRun(ToxicRun):
    def __init__(self, spec: ToxicSpec, attributes: LatencyAttributes, rng: random.Random) -> None:
        super().__init__(spec)
        self.sample = make_delay_sampler(attributes, rng)

    def apply(self, segments: list[Segment]) -> list[Segment]:
        out: list[Segment] = []
        for t, item in segments:
            if isinstance(item, bytes):
                t += self.sample()
            t = max(t, self.last)
            self.last = t
            out.append((t, item))
        return out


class BandwidthRun(ToxicRun):
    _PIECE_S = 0.02

    def __init__(self, spec: ToxicSpec, attributes: BandwidthAttributes) -> None:
        super().__init__(spec)
        self.rate = attributes.rate * 1000.0  # bytes per second
        self.piece = max(1, int(self.rate * self._PIECE_S))

    def apply(self, segments: list[Segment]) -> list[Segment]:
        if self.rate <= 0:
            return super().apply(segments)
        out: list[Segment] = []
        for t, item in segments:
            t = max(t, self.last)
            if isinstance(item, bytes):
                for offset in range(0, len(item), self.piece):
                    piece = item[offset : offset + self.piece]
                    t += len(piece) / self.rate
                    out.append((t, piece))
            else:
                out.append((t, item))
            self.last = t
        return out


class SlicerRun(ToxicRun):
    def __init__(self, spec: ToxicSpec, attributes: SlicerAttributes, rng: random.Random) -> None:
        super().__init__(spec)
        self.average = attributes.average_size
        self.variation = min(attributes.size_variation, max(attributes.average_size - 1, 0))
        self.delay = attributes.delay / 1e6
        self.rng = rng

    def apply(self, segments: list[Segment]) -> list[Segment]:
        if self.average <= 0:
            return super().apply(segments)
        out: list[Segment] = []
        for t, item in segments:
            t = max(t, self.last)
            if isinstance(item, bytes):
                offset = 0
                while offset < len(item):
                    size = self.average + self.rng.randint(-self.variation, self.variation)
                    if offset:
                        t = max(t, self.last + self.delay)
                    out.append((t, item[offset : offset + size]))
                    self.last = t
                    offset += size
            else:
                out.append((t, item))
            self.last = t
        return out


class LimitDataRun(ToxicRun):
    def __init__(self, spec: ToxicSpec, attributes: LimitDataAttributes) -> None:
        super().__init__(spec)
        self.remaining = attributes.bytes
        self.closed = False

    def apply(self, segments: list[Segment]) -> list[Segment]:
        out: list[Segment] = []
        for t, item in segments:
            if self.closed:
                break
            t = max(t, self.last)
            self.last = t
            if isinstance(item, bytes):
                if self.remaining > 0:
                    out.append((t, item[: self.remaining]))
                    self.remaining -= min(len(item), self.remaining)
                if self.remaining <= 0:
                    out.append((t, Mark.CLOSE))
                    self.closed = True
            else:
                out.append((t, item))
        return out


class TimeoutRun(ToxicRun):
    def __init__(self, spec: ToxicSpec, attributes: TimeoutAttributes) -> None:
        super().__init__(spec)
        if attributes.timeout > 0:
            self.timer = (attributes.timeout / 1000.0, Action.CLOSE)

    def apply(self, segments: list[Segment]) -> list[Segment]:
        out: list[Segment] = []
        for t, item in segments:
            if item is Mark.EOF or item is Mark.DONE:
                out.append((max(t, self.last), Mark.DONE))
        return out


class ResetPeerRun(ToxicRun):
    def __init__(self, spec: ToxicSpec, attributes: ResetPeerAttributes) -> None:
        super().__init__(spec)
        self.timer = (attributes.timeout / 1000.0, Action.RESET)


class SlowCloseRun(ToxicRun):
    def __init__(self, spec: ToxicSpec, attributes: SlowCloseAttributes) -> None:
        super().__init__(spec)
        self.delay = attributes.delay / 1000.0

    def apply(self, segments: list[Segment]) -> list[Segment]:
        out: list[Segment] = []
        for t, item in segments:
            if not isinstance(item, bytes):
                t += self.delay
            t = max(t, self.last)
            self.last = t
            out.append((t, item))
        return out


def make_run(spec: ToxicSpec, rng: random.Random) -> ToxicRun:
    """Fresh per-connection state for `spec`."""
    attributes = spec.typed
    kind = spec.type
    if kind is ToxicType.LATENCY:
        return LatencyRun(spec, attributes, rng)
    if kind is ToxicType.BANDWIDTH:
        return BandwidthRun(spec, attributes)
    if kind is ToxicType.SLICER:
        return SlicerRun(spec, attributes, rng)
    if kind is ToxicType.LIMIT_DATA:
        return LimitDataRun(spec, attributes)
    if kind is ToxicType.TIMEOUT:
        return TimeoutRun(spec, attributes)
    if kind is ToxicType.RESET_PEER:
        return ResetPeerRun(spec, attributes)
    if kind is ToxicType.SLOW_CLOSE:
        return SlowCloseRun(spec, attributes)
    raise AssertionError(f"no stream transform for toxic type {kind}")
