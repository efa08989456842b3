"""stress: targeted, synchronized load that reproduces a race and measures how often it happens."""

from heisen.stress._phase import run
from heisen.stress._trials import Conditions, TrialsResult, run_trials, vacuity

__all__ = ["Conditions", "TrialsResult", "run", "run_trials", "vacuity"]
