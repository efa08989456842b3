"""Typed phase outputs: one model per phase for what it writes under `phases.<phase>.outputs`.

Phases build their model and serialise it at the boundary (`to_manifest()`);
readers of a manifest (later phases, calibration, tests) parse it back with
`from_manifest()`. The keys and values are the manifest contract of
DESIGN.md; `LoadFigures` is the part every load-bearing phase shares.
"""

from heisen.outputs._base import FindingRecord, JsonObject, Number, OutputModel
from heisen.outputs._escalation import Escalation, EscalationTry
from heisen.outputs._fuzz import FuzzFailure, FuzzOutputs
from heisen.outputs._load import (
    Amplification,
    Bound,
    InvariantFigures,
    InvariantVerdict,
    Latency,
    LoadFigures,
    Outcomes,
    Overlap,
    P99Comparison,
    PerOperationRate,
    RateFigures,
    Spread,
    ThresholdCheck,
    Throttled,
    TrialError,
    TrialLine,
    Undecided,
)
from heisen.outputs._phases import (
    AppliedToxic,
    ChaosOutputs,
    ContainOutputs,
    DataLoss,
    ExperimentOutcome,
    Injected,
    IsolateOutputs,
    Limits,
    LinkLatency,
    ProbeLine,
    SmallestLoad,
    StressOutputs,
    StressTarget,
    Sweep,
    SweepStep,
    TimelineEntry,
    WindowState,
)
from heisen.outputs._predict import (
    Calibration,
    CalibrationPoint,
    Endpoint,
    Hotspot,
    PredictedLoad,
    PredictOutputs,
    ScoreTerms,
    Sensitivity,
    SmallestPredictedLoad,
)
from heisen.schema import PhaseName

OUTPUTS_BY_PHASE: dict[PhaseName, type[OutputModel]] = {
    PhaseName.PREDICT: PredictOutputs,
    PhaseName.STRESS: StressOutputs,
    PhaseName.FUZZ: FuzzOutputs,
    PhaseName.ISOLATE: IsolateOutputs,
    PhaseName.CONTAIN: ContainOutputs,
    PhaseName.CHAOS: ChaosOutputs,
}
"""Each phase's outputs model, by the phase (a `PhaseName` is its name in the manifest)."""

__all__ = [
    "OUTPUTS_BY_PHASE",
    "Amplification",
    "AppliedToxic",
    "Bound",
    "Calibration",
    "CalibrationPoint",
    "ChaosOutputs",
    "ContainOutputs",
    "DataLoss",
    "Endpoint",
    "Escalation",
    "EscalationTry",
    "ExperimentOutcome",
    "FindingRecord",
    "FuzzFailure",
    "FuzzOutputs",
    "Hotspot",
    "Injected",
    "InvariantFigures",
    "InvariantVerdict",
    "IsolateOutputs",
    "JsonObject",
    "Latency",
    "Limits",
    "LinkLatency",
    "LoadFigures",
    "Number",
    "Outcomes",
    "OutputModel",
    "Overlap",
    "P99Comparison",
    "PerOperationRate",
    "PredictOutputs",
    "PredictedLoad",
    "ProbeLine",
    "RateFigures",
    "ScoreTerms",
    "Sensitivity",
    "SmallestLoad",
    "SmallestPredictedLoad",
    "Spread",
    "StressOutputs",
    "StressTarget",
    "Sweep",
    "SweepStep",
    "ThresholdCheck",
    "Throttled",
    "TimelineEntry",
    "TrialError",
    "TrialLine",
    "Undecided",
    "WindowState",
]
