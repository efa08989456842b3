"""HTTP health checks of services heisen starts: one probe, or wait until healthy."""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Container
from dataclasses import dataclass

HEALTHY_STATUS = range(200, 400)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The outcome of one GET: healthy or not, the status if any, the error if none."""

    healthy: bool
    status: int | None = None
    error: str | None = None

    def describe(self) -> str:
        if self.status is not None:
            return f"HTTP {self.status}"
        return self.error or "no answer"


def probe_once(
    host: str,
    port: int,
    path: str = "/health",
    *,
    timeout_s: float = 1.0,
    expect_status: Container[int] = HEALTHY_STATUS,
    tls: ssl.SSLContext | None = None,
) -> ProbeResult:
    """GET `path` once, as a kubelet HTTP probe does: healthy if the status is expected.

    With `tls`, over HTTPS (a kubelet's HTTPS probe does not verify the certificate either:
    give a context that does not)."""
    connection = (
        http.client.HTTPSConnection(host, port, timeout=timeout_s, context=tls)
        if tls is not None
        else http.client.HTTPConnection(host, port, timeout=timeout_s)
    )
    try:
        connection.request(
            "GET", path, headers={"User-Agent": "heisen-health", "Connection": "close"}
        )
        response = connection.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, None, f"{type(exc).__name__}: {exc}")
    finally:
        connection.close()
    return ProbeResult(response.status in expect_status, response.status)


def wait_healthy(
    host: str,
    port: int,
    path: str = "/health",
    *,
    deadline_s: float,
    expect_status: Container[int] = HEALTHY_STATUS,
    interval_s: float = 0.05,
) -> bool:
    """True as soon as one probe is healthy, False once `deadline_s` has passed."""
    deadline = time.monotonic() + deadline_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        timeout = max(0.05, min(1.0, remaining))
        if probe_once(host, port, path, timeout_s=timeout, expect_status=expect_status).healthy:
            return True
        time.sleep(min(interval_s, max(0.0, deadline - time.monotonic())))
