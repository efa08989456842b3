"""The steady-state hypothesis: probes before, during and after the chaos.

Modes are LitmusChaos': `SOT` runs once before the faults, `EOT` once after
they are all removed, `Edge` both, `Continuous` every `interval` while the
load runs, `OnChaos` every `interval` but only while a fault is active.

Two kinds of probe:
- `invariant: NAME` evaluates that pipeline invariant (a sql/redis/http/
  python probe with its `expect:`). Invariants that need what the load did
  (`acknowledged:`, `history:`) are judged once, after the load, from every
  record; as probes they count in the `after` window only.
- `http: "GET /health"` sends that request to the target service and judges
  the window's *traffic*: `availability` is the share of answered requests
  among the chaos load's requests that completed since the probe's previous
  evaluation (answered: a complete response below 500; a 409 "sold out" is
  the service working, a reset, timeout or 5xx is not), plus its own
  request, which must answer 2xx; `latency_p99` bounds their 99th percentile (coordinated
  omission corrected). Before and after the load, there is no traffic: the
  probe sends `HTTP_SAMPLES` requests of its own and judges those. Without
  `availability`, the probe's own requests must all answer 2xx.

`tolerance` is the share of a probe's evaluations in one window that may
fail while the probe still passes (0: every evaluation must pass). A window
passes when each of its probes does; a window without probes passes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from heisen.chaos._faults import Faults
from heisen.chaos._rounds import ChaosVerdict
from heisen.chaos._timeline import Timeline
from heisen.errors import SystemUnavailable
from heisen.oracle import Verdict
from heisen.oracle.pipeline_invariants import evaluate_probe, is_probe, probe_context
from heisen.outputs import ProbeLine, WindowState
from heisen.phase import PhaseContext
from heisen.schema import Probe
from heisen.stress import RequestRecord
from heisen.system import service_tls

HTTP_SAMPLES = 10
Window = Literal["before", "during", "after"]
WINDOWS: tuple[Window, ...] = ("before", "during", "after")
MODE_WINDOWS: dict[str, tuple[Window, ...]] = {
    "SOT": ("before",),
    "EOT": ("after",),
    "Edge": ("before", "after"),
    "Continuous": ("during",),
    "OnChaos": ("during",),
}


@dataclass(frozen=True, slots=True)
class Evaluation:
    probe: str
    window: Window
    t_s: float
    passed: bool
    message: str
    value: Mapping[str, Any] = field(default_factory=dict)
    fault: str | None = None  # the probe could not be evaluated: "pipeline" or "environment"


def verdict_of(
    evaluations: list[Evaluation], probes: list[Probe]
) -> tuple[ChaosVerdict, list[ProbeLine]]:
    """Pass/Fail of one window, and one line per probe."""
    lines = []
    for probe in probes:
        mine = [e for e in evaluations if e.probe == probe.name]
        if not mine:
            continue
        failures = sum(not e.passed for e in mine)
        passed = failures / len(mine) <= probe.tolerance
        last_failed = next((e for e in reversed(mine) if not e.passed), None)
        lines.append(
            ProbeLine(
                name=probe.name,
                mode=probe.mode,
                evaluations=len(mine),
                failures=failures,
                verdict=(ChaosVerdict.PASS if passed else ChaosVerdict.FAIL).value,
                message=(last_failed or mine[-1]).message,
            )
        )
    passed = all(line.verdict == ChaosVerdict.PASS for line in lines)
    return (ChaosVerdict.PASS if passed else ChaosVerdict.FAIL), lines


class SteadyState:
    """Evaluates the probes of each window and keeps every evaluation."""

    def __init__(
        self,
        ctx: PhaseContext,
        probes: list[Probe],
        timeline: Timeline,
        faults: Faults,
        records: Callable[[], list[RequestRecord]],
    ) -> None:
        self.ctx = ctx
        self.pipeline = ctx.pipeline
        assert ctx.system is not None
        self.system = ctx.system
        self.probes = list(probes)
        self.timeline = timeline
        self.faults = faults
        self.records = records
        self.evaluations: list[Evaluation] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor_ns: dict[str, int] = {}
        self.invariant_verdicts: dict[str, Verdict] = {}

    def of(self, window: Window) -> list[Probe]:
        return [p for p in self.probes if window in MODE_WINDOWS[p.mode]]

    # -- before and after ---------------------------------------------------------------

    def check(self, window: Window) -> ChaosVerdict:
        for probe in self.of(window):
            self._record(self.evaluate(probe, window))
        verdict, _ = verdict_of(self.window(window), self.of(window))
        self.timeline.add("steady-state", f"{window}: {verdict.value}")
        return verdict

    # -- during -----------------------------------------------------------------------------

    def start(self) -> None:
        during = self.of("during")
        if not during:
            return
        now_ns = time.monotonic_ns()
        self._cursor_ns = {p.name: now_ns for p in during}
        self._thread = threading.Thread(
            target=self._loop, args=(during,), name="heisen-chaos-probes", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15.0)

    def _loop(self, probes: list[Probe]) -> None:
        due = {p.name: time.monotonic() + p.interval for p in probes}
        tick = max(0.05, min(p.interval for p in probes) / 4)
        while not self._stop.wait(tick):
            for probe in probes:
                now = time.monotonic()
                if now < due[probe.name]:
                    continue
                due[probe.name] = now + probe.interval
                if probe.mode == "OnChaos" and not self.faults.active():
                    self._cursor_ns[probe.name] = time.monotonic_ns()
                    continue
                self._record(self.evaluate(probe, "during"))

    # -- one evaluation ----------------------------------------------------------------------

    def _record(self, evaluation: Evaluation) -> None:
        with self._lock:
            self.evaluations.append(evaluation)
        if not evaluation.passed or evaluation.window != "during":
            self.timeline.add(
                "probe",
                f"{evaluation.probe} ({evaluation.window}): "
                f"{'Pass' if evaluation.passed else 'Fail'}: {evaluation.message}",
            )

    def window(self, window: Window) -> list[Evaluation]:
        with self._lock:
            return [e for e in self.evaluations if e.window == window]

    def evaluate(self, probe: Probe, window: Window) -> Evaluation:
        t_s = round(self.timeline.now(), 3)
        try:
            if probe.invariant is not None:
                verdict = self._invariant(probe)
            else:
                verdict = self._http(probe, window)
        except Exception as exc:  # a probe that cannot run fails, as in LitmusChaos
            message = f"probe error: {type(exc).__name__}: {exc}"
            return Evaluation(probe.name, window, t_s, False, message, {}, "environment")
        return Evaluation(
            probe.name,
            window,
            t_s,
            verdict.held is True,
            verdict.message,
            verdict.value,
            verdict.fault,
        )

    def not_evaluated(self) -> Evaluation | None:
        """The first evaluation that decides nothing: a probe the pipeline got wrong (in any
        window), or one that could not run before the faults or after their rollback. While
        faults are active, a probe that cannot run is that experiment's evidence (LitmusChaos)."""
        with self._lock:
            for evaluation in self.evaluations:
                if evaluation.fault == "pipeline" or (
                    evaluation.fault and evaluation.window != "during"
                ):
                    return evaluation
        return None

    def _invariant(self, probe: Probe) -> Verdict:
        """The invariant's verdict now; one judged from the records counts after the load only."""
        invariant = next(i for i in self.pipeline.invariants if i.name == probe.invariant)
        if not is_probe(invariant):
            verdict = self.invariant_verdicts.get(invariant.name)
            if verdict is None:
                return Verdict(
                    invariant.name,
                    True,
                    f"{invariant.name} is judged from every record after the load",
                )
            return Verdict(verdict.name, verdict.held, verdict.message, {}, verdict.fault)
        context = probe_context(1, self.ctx.seed, self.ctx.run_dir)
        return evaluate_probe(self.pipeline, self.system, invariant, context)

    def _http(self, probe: Probe, window: Window) -> Verdict:
        """The probe's own requests and, during the load, the window's traffic (module docstring)."""
        from heisen.oracle import probes

        assert probe.http is not None
        method, _, path = probe.http.strip().partition(" ")
        first = next(iter(self.pipeline.scenario.requests.values()))
        service = self.pipeline.target_service(first)
        base = self.system.service_url(service)
        tls = service_tls(self.pipeline, service, self.ctx.loaded.base_dir)
        samples = 1 if window == "during" else HTTP_SAMPLES
        own: list[tuple[bool, float]] = []
        for _ in range(samples):
            began = time.monotonic()
            try:
                status = probes.http_probe(
                    base, method or "GET", path or "/", timeout_s=5, tls=tls
                )["status"]
            except probes.ProbeError:
                status = None
            except SystemUnavailable:
                # A refused TLS handshake: the environment before or after the faults, but
                # while they are active a replica killed mid-handshake fails it too.
                if window != "during":
                    raise
                status = None
            own.append(
                (status is not None and 200 <= status < 300, (time.monotonic() - began) * 1000)
            )
        traffic: list[tuple[bool, float]] = []
        if window == "during":
            since = self._cursor_ns.get(probe.name, 0)
            until = time.monotonic_ns()
            self._cursor_ns[probe.name] = until
            for record in self.records():
                if since < record.end_ns <= until:
                    latency = record.corrected_latency_ns
                    ok = record.error is None and record.status is not None and record.status < 500
                    traffic.append((ok, (latency or 0) / 1e6))
        both = traffic + own
        availability = sum(ok for ok, _ in both) / len(both)
        latencies = sorted(ms for _, ms in both)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        problems = []
        if probe.availability is not None and availability < probe.availability:
            problems.append(f"availability {availability:.3f} < {probe.availability}")
        if probe.availability is None and not all(ok for ok, _ in own):
            problems.append(f"{probe.http} did not answer 2xx")
        if probe.latency_p99 is not None and p99 > probe.latency_p99 * 1000:
            problems.append(f"p99 {p99:.1f} ms > {probe.latency_p99 * 1000:g} ms")
        value = {
            "availability": round(availability, 4),
            "p99_ms": round(p99, 2),
            "requests": len(both),
        }
        message = "; ".join(problems) or (
            f"availability {availability:.3f}, p99 {p99:.1f} ms over {len(both)} requests"
        )
        return Verdict(probe.name, not problems, message, value)

    # -- the manifest ------------------------------------------------------------------------

    def verdicts(self) -> dict[Window, ChaosVerdict]:
        """Each window's verdict (`before`, `during`, `after`)."""
        return {w: verdict_of(self.window(w), self.of(w))[0] for w in WINDOWS}

    def summary(self) -> dict[str, WindowState]:
        """The manifest's `steady_state`: per window, its verdict and one line per probe."""
        out: dict[str, WindowState] = {}
        for window in WINDOWS:
            verdict, lines = verdict_of(self.window(window), self.of(window))
            out[window] = WindowState(verdict=verdict.value, probes=lines)
        return out

    def failed_during(self, spans: list[tuple[float, float]]) -> list[str]:
        """Probes whose evaluations inside these spans (t_s) failed beyond their tolerance."""
        inside = [e for e in self.window("during") if any(a <= e.t_s <= b + 1.0 for a, b in spans)]
        _, lines = verdict_of(inside, self.of("during"))
        return [line.name for line in lines if line.verdict == ChaosVerdict.FAIL]
