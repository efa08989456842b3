"""`heisen fuzz replay RUN_DIR CASE_ID`: resend one fuzz finding; exit 1 while it still fails.

0 when it no longer fails, 2 for a bad command line (not a run dir, an
unknown case id), 3 when the system cannot start or be reached. When heisen
started the service in that run, the replay starts it again, as the phases
do (the pipeline's system, in a fresh run dir beside nothing), and stops it; an https
service is spoken to with the TLS settings the case stored (or, for a service heisen
starts, the pipeline's `tls:` as it is now).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from heisen.errors import UsageError


def replay_case(args: Sequence[str]) -> int:
    """Run `heisen fuzz replay RUN_DIR CASE_ID` (the words after `replay`)."""
    from heisen.fuzz.replay import load_case, resend

    if len(args) != 2:
        raise UsageError("usage: heisen fuzz replay RUN_DIR CASE_ID")
    run_dir, case_id = Path(args[0]), args[1]
    case = load_case(run_dir, case_id)
    if case.base_url is not None:
        return resend(run_dir, case, case.base_url)
    if case.pipeline is None or case.service is None:
        raise UsageError(f"fuzz case {case_id} in {run_dir} names no URL and no pipeline service")
    return _replay_on_started_system(run_dir, case.pipeline, case.service, case_id)


def _replay_on_started_system(run_dir: Path, pipeline: str, service: str, case_id: str) -> int:
    import dataclasses

    from heisen.fuzz.replay import ReplayCase, load_case, resend
    from heisen.pipeline import load_pipeline
    from heisen.system import SystemHandle, service_tls

    loaded = load_pipeline(Path(pipeline))
    case = load_case(run_dir, case_id)
    tls = service_tls(loaded.pipeline, service, loaded.base_dir)
    if tls is not None:
        case = dataclasses.replace(case, **ReplayCase.tls_fields(tls))
    with tempfile.TemporaryDirectory(prefix="heisen-replay-") as scratch:
        system = SystemHandle(loaded, Path(scratch), seed=0, run_id="replay", log=lambda _: None)
        try:
            system.start()  # SystemUnavailable (exit 3) when it cannot
            return resend(run_dir, case, str(system.service_url(service)))
        finally:
            system.stop()
