"""`heisen fuzz replay RUN_DIR CASE_ID`: what a run stored to resend one failing case.

For each finding the phase writes `RUN_DIR/fuzz/<case>.json` (the shrunk
body as it goes on the wire, which the finding's `curl --data-binary @…`
reads) and `RUN_DIR/fuzz/<case>.replay.json` (method, path, headers, the
service's URL or the pipeline service that heisen starts, how to speak TLS
to it, and which statuses mean "still failing"). `resend` sends it once.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from heisen.errors import SystemUnavailable, UsageError

if TYPE_CHECKING:
    from heisen.system import TlsSettings

__all__ = ["REPLAY_DIR", "ReplayCase", "load_case", "resend", "save_case"]

REPLAY_DIR = "fuzz"
_SUFFIX = ".replay.json"


@dataclass(frozen=True)
class ReplayCase:
    id: str
    method: str
    target: str
    """Path and query, as sent (`/api/orders?x=1`)."""
    headers: dict[str, str]
    fail_on: str
    """A `--fail-on` list: `5xx`, `reset`, `timeout`, `nonconforming`…"""
    base_url: str | None
    """Where the service was; None when heisen started it (`service` of `pipeline`)."""
    service: str | None = None
    pipeline: str | None = None
    signature: str = ""
    openapi: str | None = None
    operation: str | None = None
    cacert: str | None = None
    """An https service's TLS settings (`tls:` or the ad hoc flags), files absolute."""
    insecure: bool = False
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None

    @staticmethod
    def tls_fields(tls: TlsSettings | None) -> dict[str, Any]:
        """The keyword arguments that store `tls` in a `ReplayCase`."""
        if tls is None:
            return {}
        return {
            "cacert": str(tls.ca) if tls.ca else None,
            "insecure": tls.insecure,
            "cert": str(tls.cert) if tls.cert else None,
            "key": str(tls.key) if tls.key else None,
            "server_name": tls.server_name,
        }

    def tls(self) -> TlsSettings:
        from heisen.system import TlsSettings

        def path(text: str | None) -> Path | None:
            return Path(text) if text else None

        return TlsSettings(
            path(self.cacert), self.insecure, path(self.cert), path(self.key), self.server_name
        )

    def body_file(self, run_dir: Path) -> Path:
        return run_dir / REPLAY_DIR / f"{self.id}.json"


def save_case(run_dir: Path, case: ReplayCase, body: bytes) -> None:
    folder = run_dir / REPLAY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{case.id}.json").write_bytes(body)
    (folder / f"{case.id}{_SUFFIX}").write_text(
        json.dumps(asdict(case), indent=2) + "\n", encoding="utf-8"
    )


def load_case(run_dir: Path, case_id: str) -> ReplayCase:
    """The stored case; UsageError (exit 2) for a folder that is no run dir or an unknown id."""
    folder = run_dir / REPLAY_DIR
    if not folder.is_dir():
        raise UsageError(f"{run_dir} is not the run dir of a fuzz run with findings (no {folder})")
    path = folder / f"{case_id}{_SUFFIX}"
    if not path.is_file():
        known = sorted(p.name[: -len(_SUFFIX)] for p in folder.glob(f"*{_SUFFIX}"))
        raise UsageError(
            f"no fuzz finding {case_id!r} in {run_dir} (findings: {', '.join(known) or 'none'})"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return ReplayCase(**data)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not a replay record heisen wrote: {exc}") from exc


def resend(run_dir: Path, case: ReplayCase, base_url: str, *, timeout_s: float = 10.0) -> int:
    """Send the case to `base_url`: 1 while it still fails, 0 when it passes, 3 unreachable."""
    from heisen.fuzz._replay import main, tls_words

    argv = [
        "--url",
        base_url.rstrip("/") + case.target,
        "--method",
        case.method,
        "--body-file",
        str(case.body_file(run_dir)),
        "--fail-on",
        case.fail_on,
        "--timeout",
        str(timeout_s),
    ]
    if case.openapi and case.operation:
        argv += ["--openapi", case.openapi, "--operation", case.operation]
    for name, value in case.headers.items():
        argv += ["--header", f"{name}: {value}"]
    if base_url.startswith("https://"):
        argv += tls_words(case.tls())
    code = main(argv)
    if code == 3:
        raise SystemUnavailable(f"cannot reach {base_url} to replay fuzz case {case.id}")
    return code
