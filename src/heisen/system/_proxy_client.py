"""Synchronous client of the proxy daemon, and the helper that starts one.

    process, control = start_proxy_daemon(run_dir / "logs" / "proxyd.log", seed=42)
    host, port = control.create("redis", ["127.0.0.1:6379"])
    control.add_toxic("redis", {"type": "latency", "attributes": {"latency": 20}})
    ...
    process.stop()

Every failure becomes a heisen error: an unreachable daemon or a proxy that
cannot listen is `SystemUnavailable` (exit 3); an unknown proxy or toxic, a
name already taken or an invalid toxic is `UsageError` (exit 2), with the
daemon's own message.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from heisen._serialised import JsonObject
from heisen.errors import SystemUnavailable, UsageError
from heisen.system._ports import LOOPBACK, free_port
from heisen.system._process import ManagedProcess, spawn
from heisen.system._tcpproxy import Address, ProxyStats
from heisen.system_protocol import DependencyOperation, LatencyHistogram

if TYPE_CHECKING:
    import httpx

__all__ = ["ProxyControl", "start_proxy_daemon"]


def _q(name: str) -> str:
    """A proxy or toxic name as one URL path segment (names such as `svc:api` are fine)."""
    return quote(name, safe="")


class ProxyControl:
    """Calls on one proxy daemon's HTTP API (`api_url` such as `http://127.0.0.1:8474`)."""

    def __init__(self, api_url: str, *, timeout_s: float = 5.0) -> None:
        import httpx

        self.api_url = api_url.rstrip("/")
        self._http = httpx.Client(base_url=self.api_url, timeout=timeout_s, trust_env=False)

    # --- transport ----------------------------------------------------------
    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise SystemUnavailable(
                f"the proxy daemon at {self.api_url} did not answer {method} {path}: {exc}"
                " (is it running? see its log)"
            ) from exc
        return self._result(method, path, response)

    def _result(self, method: str, path: str, response: httpx.Response) -> Any:
        if response.status_code == 204:
            return None
        try:
            document = response.json()
        except ValueError:
            document = {"error": response.text.strip() or response.reason_phrase}
        if response.is_success:
            return document
        message = document.get("error") if isinstance(document, dict) else None
        text = f"{method} {path} failed ({response.status_code}): {message or document}"
        if response.status_code >= 500:
            raise SystemUnavailable(text)
        raise UsageError(text)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProxyControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- daemon -------------------------------------------------------------
    def version(self) -> str:
        return str(self._call("GET", "/version")["version"])

    def proxies(self) -> dict[str, JsonObject]:
        result: dict[str, JsonObject] = self._call("GET", "/proxies")
        return result

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    # --- proxies ------------------------------------------------------------
    def create(
        self,
        name: str,
        upstreams: Sequence[str],
        listen: str = f"{LOOPBACK}:0",
        *,
        enabled: bool = True,
    ) -> tuple[str, int]:
        """Create a proxy; returns the (host, port) it listens on."""
        body = {"name": name, "listen": listen, "upstreams": list(upstreams), "enabled": enabled}
        document = self._call("POST", "/proxies", body)
        address = Address.parse(document["listen"])
        return address.host, address.port

    def proxy(self, name: str) -> JsonObject:
        result: JsonObject = self._call("GET", f"/proxies/{_q(name)}")
        return result

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{_q(name)}")

    def set_upstreams(self, name: str, upstreams: Sequence[str]) -> None:
        self._call("POST", f"/proxies/{_q(name)}", {"upstreams": list(upstreams)})

    def set_ready(self, name: str, upstream: str, ready: bool) -> None:
        self._call(
            "POST", f"/proxies/{_q(name)}/upstreams/ready", {"upstream": upstream, "ready": ready}
        )

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._call("POST", f"/proxies/{_q(name)}", {"enabled": enabled})

    def stats(self, name: str) -> ProxyStats:
        stats = self.proxy(name)["stats"]
        return ProxyStats(
            connections_total=stats["connections_total"],
            connections_active=stats["connections_active"],
            bytes_upstream=stats["bytes_upstream"],
            bytes_downstream=stats["bytes_downstream"],
            upstream_connections=stats["upstream_connections"],
            toxic_chunks=stats["toxic_chunks"],
            toxic_delay_s=stats["toxic_delay_s"],
            round_trips=LatencyHistogram.of(stats.get("round_trips", ())),
        )

    def peers(self, name: str) -> dict[str, str]:
        """`{client "host:port": upstream "host:port"}` of the proxy's last 100,000 connections."""
        return self.peers_since(name, 0)[1]

    def peers_since(self, name: str, since: int) -> tuple[int, dict[str, str]]:
        """(connections accepted so far, the peers of those after the first `since`)."""
        document = self._call("GET", f"/proxies/{_q(name)}/peers?since={int(since)}")
        peers: dict[str, str] = document["peers"]
        return int(document["connections"]), peers

    # --- toxics -------------------------------------------------------------
    def set_tap(self, name: str, protocol: str | None) -> None:
        """Decode `protocol` on the proxy's connections opened from now on (None: stop)."""
        self._call("POST", f"/proxies/{_q(name)}", {"tap": protocol})

    def operations_since(
        self, name: str, since: int
    ) -> tuple[int, list[DependencyOperation], dict[str, int]]:
        """(operations decoded so far, those after the first `since`, connections the tap
        stopped following by reason)."""
        document = self._call("GET", f"/proxies/{_q(name)}/operations?since={int(since)}")
        decoded = [DependencyOperation.from_json(item) for item in document["operations"]]
        lost = {str(k): int(v) for k, v in (document.get("tap_lost") or {}).items()}
        return int(document["total"]), decoded, lost

    def toxics(self, name: str) -> list[JsonObject]:
        result: list[JsonObject] = self._call("GET", f"/proxies/{_q(name)}/toxics")
        return result

    def add_toxic(self, name: str, toxic: Mapping[str, Any]) -> JsonObject:
        """Add a toxic (Toxiproxy's JSON form); returns it with its defaults filled in."""
        result: JsonObject = self._call("POST", f"/proxies/{_q(name)}/toxics", toxic)
        return result

    def update_toxic(self, name: str, toxic_name: str, changes: Mapping[str, Any]) -> JsonObject:
        """Change a toxic's toxicity, stream or attributes (merged key by key)."""
        result: JsonObject = self._call(
            "POST", f"/proxies/{_q(name)}/toxics/{_q(toxic_name)}", changes
        )
        return result

    def remove_toxic(self, name: str, toxic_name: str) -> None:
        self._call("DELETE", f"/proxies/{_q(name)}/toxics/{_q(toxic_name)}")


def start_proxy_daemon(
    log_path: Path, seed: int, *, host: str = LOOPBACK, deadline_s: float = 15.0
) -> tuple[ManagedProcess, ProxyControl]:
    """Spawn the proxy daemon on a free port and wait until its API answers `/version`.

    A port found free can be taken before the daemon binds it; then the start
    is retried on another port, up to three times.
    """
    last_tail = ""
    for _attempt in range(3):
        port = free_port(host)
        argv = [sys.executable, "-m", "heisen.system._proxyd", "--api-host", host]
        argv += ["--api-port", str(port), "--seed", str(seed)]
        process = spawn("proxyd", argv, log_path=log_path)
        control = ProxyControl(f"http://{host}:{port}", timeout_s=5.0)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and process.alive():
            try:
                control.version()
                return process, control
            except SystemUnavailable:
                time.sleep(0.05)
        control.close()
        last_tail = process.tail()
        process.stop()
        if "address already in use" not in last_tail.lower():
            break
    raise SystemUnavailable(
        f"the proxy daemon did not start within {deadline_s:.0f}s; log {log_path}:\n{last_tail}"
    )
