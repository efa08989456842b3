"""stress: targeted, synchronized load that reproduces a race and measures how often it happens.

It also owns the one load engine the other phases use:

* `run_trials(ctx, Conditions(...))` runs the scenario's trials (setup, load,
  invariants, history) and returns a `TrialsResult`; `vacuity` says why
  trials without violations prove nothing.
* `StreamingLoad` runs one sustained step in the background and streams its
  records while something else happens (chaos injects faults meanwhile);
  `check_invariants` then judges the pipeline's invariants over those records
  exactly as a trial does, one `heisen.oracle.Verdict` each.
* `run_burst` sends requests as one synchronized burst (`BurstResult`);
  `sweep_bursts` grows such a burst until it reproduces the ladder's target
  (`phase_sweep` is the sweep a phase's section asks for, `sweep_words` its
  summary).
* `Attempt` tries one condition at a time with a few single trials, for
  the searches isolate and contain run when the pipeline names no condition
  (`replays_naming` adds the condition found to the findings' replay).
* `RequestRecord` is what is kept of every request (`SendCount` and
  `missing_records` check that each request sent has exactly one);
  `summarize` turns records into the manifest's load figures (`LoadSummary`);
  `load_variables` gives them to `expect:` as `load.*`; `append_load_log`
  keeps when each request happened in `<phase>-load.jsonl` (`load_log_name`),
  judged by the requests' `expect_status:` (`expected_statuses`).
* `RequestFactory` renders the scenario's request templates into
  `HttpRequest`s and keeps what it sent (`RenderedRequest`).
"""

from heisen.stress._attempts import Attempt, replays_naming
from heisen.stress._burst import BurstResult, run_burst
from heisen.stress._latency import LoadSummary, summarize
from heisen.stress._load_facts import load_variables
from heisen.stress._load_log import append_load_log, expected_statuses, load_log_name
from heisen.stress._phase import run
from heisen.stress._records import ErrorKind, RequestRecord, SendCount, missing_records
from heisen.stress._render import RenderedRequest, RequestFactory
from heisen.stress._request import HttpRequest
from heisen.stress._stream import StreamingLoad
from heisen.stress._sweep import phase_sweep, sweep_bursts, sweep_words
from heisen.stress._tls import TlsClient, tls_client
from heisen.stress._tls_check import check_tls_accepted
from heisen.stress._trials import Conditions, TrialsResult, run_trials, vacuity
from heisen.stress._verdicts import check_invariants

__all__ = [
    "Attempt",
    "BurstResult",
    "Conditions",
    "ErrorKind",
    "HttpRequest",
    "LoadSummary",
    "RenderedRequest",
    "RequestFactory",
    "RequestRecord",
    "SendCount",
    "StreamingLoad",
    "TlsClient",
    "TrialsResult",
    "append_load_log",
    "check_invariants",
    "check_tls_accepted",
    "expected_statuses",
    "load_log_name",
    "load_variables",
    "missing_records",
    "phase_sweep",
    "replays_naming",
    "run",
    "run_burst",
    "run_trials",
    "summarize",
    "sweep_bursts",
    "sweep_words",
    "tls_client",
    "vacuity",
]
