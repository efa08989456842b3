"""What the runner tells its handlers: the terminal view, the manifest writer, the reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from heisen._serialised import JsonObject


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    run_dir: str
    seed: int
    phases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SystemStarting:
    what: str


@dataclass(frozen=True, slots=True)
class PhaseStarted:
    phase: str
    trials: int | None = None


@dataclass(frozen=True, slots=True)
class TrialFinished:
    phase: str
    trial: int
    trials: int
    violated: bool
    requests: int
    rps: float
    p99_ms: float | None
    violations_so_far: int


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str
    message: str
    completed: float | None = None
    total: float | None = None


@dataclass(frozen=True, slots=True)
class Warning:
    phase: str | None
    message: str


@dataclass(frozen=True, slots=True)
class TeardownFailed:
    """What did not stop cleanly when the run ended, each as `(what, error)`."""

    problems: tuple[tuple[str, str], ...]

    @property
    def message(self) -> str:
        listed = "; ".join(f"{what}: {error}" for what, error in self.problems)
        return f"did not stop cleanly: {listed}"


@dataclass(frozen=True, slots=True)
class PhaseFinished:
    phase: str
    status: str
    summary: str
    duration_s: float
    outputs: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended with `status`; the exit code is the command line's to decide."""

    status: str
    run_dir: str


Event = (
    RunStarted
    | SystemStarting
    | PhaseStarted
    | TrialFinished
    | Progress
    | Warning
    | TeardownFailed
    | PhaseFinished
    | RunFinished
)
EventSink = Callable[[Event], None]


def discard(event: Event) -> None:
    """A sink for when nobody listens."""
