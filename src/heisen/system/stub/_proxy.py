"""Forwarding a request to a real service (`proxyBaseUrl`), aiohttp imported lazily.

The reply is relayed as received (status, reason, headers minus hop-by-hop
ones, body). The stub's delay is added on top of the upstream's own time.
An upstream that cannot be reached answers 502 with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from heisen.system.stub._http import HttpRequest
from heisen.system.stub._responses import ProxySpec

if TYPE_CHECKING:
    import aiohttp

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
    }
)


class Forwarder:
    def __init__(self, timeout_s: float = 60.0) -> None:
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def forward(
        self, spec: ProxySpec, request: HttpRequest
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s), auto_decompress=False
            )
        target = request.target
        if spec.prefix_to_remove and target.startswith(spec.prefix_to_remove):
            target = target[len(spec.prefix_to_remove) :] or "/"
        headers: list[tuple[str, str]] = [
            (n, v)
            for n, v in request.raw_headers
            if n.lower() not in HOP_BY_HOP and n.lower() not in spec.remove_headers
        ]
        headers += list(spec.add_headers)
        try:
            async with self._session.request(
                request.method,
                spec.base_url + target,
                headers=_multi(headers),
                data=request.body or None,
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                relayed = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in upstream.raw_headers
                    if k.decode("latin-1").lower() not in HOP_BY_HOP
                ]
                return upstream.status, upstream.reason or "", relayed, body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            text = f"proxy to {spec.base_url} failed: {type(exc).__name__}: {exc}\n".encode()
            return 502, "Bad Gateway", [("Content-Type", "text/plain; charset=utf-8")], text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _multi(headers: list[tuple[str, str]]) -> Any:
    from multidict import CIMultiDict

    return CIMultiDict(headers)
