"""The proxy daemon: any number of TCP proxies behind one HTTP control API.

    python -m heisen.system._proxyd --api-host 127.0.0.1 --api-port 8474 [--seed 42]

The API follows Toxiproxy's where the two overlap, so its clients work:

    GET    /version
    GET    /proxies                         {name: proxy}
    POST   /proxies                         {"name", "listen", "upstream", "enabled"} -> 201
    GET    /proxies/{name}
    POST   /proxies/{name}                  change "upstream"/"upstreams" and "enabled"
    DELETE /proxies/{name}                  -> 204
    GET    /proxies/{name}/toxics
    POST   /proxies/{name}/toxics           {"name", "type", "stream", "toxicity", "attributes"}
    GET    /proxies/{name}/toxics/{toxic}
    POST   /proxies/{name}/toxics/{toxic}   change "toxicity", "stream", merge "attributes"
    DELETE /proxies/{name}/toxics/{toxic}   -> 204
    POST   /reset                           enable every proxy, remove every toxic -> 204

heisen's extensions: `"tap": "redis" | "postgres" | "http" | null` wherever a
proxy is created or changed (decode that protocol on the connections opened
from then on), `GET /proxies/{name}/operations[?since=N]` -> `{"total": N,
"operations": [...], "tap_lost": {reason: connections}}`: the operations the
tap decoded after the first N (see `heisen.system._tap`),
`"upstreams": ["h:p", ...]` wherever `upstream` is
accepted (round-robin over the ready ones), `POST /proxies/{name}/upstreams/ready
{"upstream": "h:p", "ready": false}`, `stats` in every proxy document, and
`GET /proxies/{name}/peers[?since=N]` -> `{"connections": total, "peers":
{"127.0.0.1:51234": "127.0.0.1:40001", ...}}`: the client address and the
upstream of each connection accepted after the first N (of the last 100,000).

Errors are JSON, `{"error": message, "status": code}`: 400 for a bad
request, 404 for an unknown proxy or toxic, 409 for a name already taken,
500 when a proxy cannot listen.

Each proxy draws toxicity rolls and latency samples from its own generator,
seeded from `--seed` and its name, so a run is repeatable for a given seed
and order of connections.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from heisen._serialised import JsonObject
from heisen.errors import HeisenError, SystemUnavailable, UsageError
from heisen.system._tcpproxy import Address, TcpProxy, ToxicConflict, ToxicNotFound
from heisen.system._toxics import parse_toxic

VERSION = "heisen-proxyd/1"
_log = logging.getLogger("heisen.proxyd")


class ProxyNotFound(UsageError):
    pass


class ProxyConflict(UsageError):
    pass


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UpstreamEntry(_Body):
    """An upstream as `GET /proxies/{name}` shows it, so a document can be posted back."""

    address: str
    ready: bool = True


class CreateProxy(_Body):
    name: str
    listen: str = "127.0.0.1:0"
    upstream: str | None = None
    upstreams: list[str | UpstreamEntry] | None = None
    enabled: bool = True
    tap: str | None = None
    # Toxiproxy clients post back the whole proxy document; these parts are read-only.
    toxics: list[Any] | None = None
    stats: JsonObject | None = None


class UpdateProxy(_Body):
    name: str | None = None
    listen: str | None = None
    upstream: str | None = None
    upstreams: list[str | UpstreamEntry] | None = None
    enabled: bool | None = None
    tap: str | None = None  # changed only when the body names it
    toxics: list[Any] | None = None
    stats: JsonObject | None = None


class SetReady(_Body):
    upstream: str
    ready: bool


def _upstreams(single: str | None, many: list[str | UpstreamEntry] | None) -> list[Address] | None:
    if many is not None:
        return [Address.parse(u if isinstance(u, str) else u.address) for u in many]
    if single is not None:
        return [Address.parse(single)]
    return None


def _apply_readiness(proxy: TcpProxy, many: list[str | UpstreamEntry] | None) -> None:
    for entry in many or ():
        if isinstance(entry, UpstreamEntry):
            proxy.set_ready(Address.parse(entry.address), entry.ready)


class Registry:
    """The daemon's proxies by name; lives on the event loop that serves the API."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.proxies: dict[str, TcpProxy] = {}

    def get(self, name: str) -> TcpProxy:
        try:
            return self.proxies[name]
        except KeyError:
            known = ", ".join(sorted(self.proxies)) or "none"
            raise ProxyNotFound(f"no proxy {name!r} (proxies: {known})") from None

    async def create(self, body: CreateProxy) -> TcpProxy:
        if body.name in self.proxies:
            raise ProxyConflict(f"proxy {body.name!r} already exists; delete it first")
        upstreams = _upstreams(body.upstream, body.upstreams)
        if upstreams is None:
            raise UsageError("a proxy needs `upstream` (host:port) or `upstreams` (a list)")
        listen = Address.parse(body.listen)
        if listen.host == "localhost":
            listen = Address("127.0.0.1", listen.port)
        proxy = TcpProxy(
            body.name,
            listen,
            upstreams,
            rng=random.Random(f"{self.seed}:{body.name}"),
            enabled=body.enabled,
        )
        _apply_readiness(proxy, body.upstreams)
        proxy.set_tap(body.tap)
        await proxy.start()
        self.proxies[body.name] = proxy
        _log.info(
            "proxy %s listening on %s -> %s",
            body.name,
            proxy.listen,
            ", ".join(str(a) for a in proxy.upstreams),
        )
        return proxy

    async def update(self, name: str, body: UpdateProxy) -> TcpProxy:
        proxy = self.get(name)
        if body.name not in (None, name):
            raise UsageError("a proxy cannot be renamed; delete it and create a new one")
        if body.listen is not None and Address.parse(body.listen) not in (
            proxy.listen,
            Address(proxy.listen.host, 0),
        ):
            raise UsageError(
                "a proxy's listen address cannot be changed; delete it and create it again"
            )
        upstreams = _upstreams(body.upstream, body.upstreams)
        if upstreams is not None:
            proxy.set_upstreams(upstreams)
            _apply_readiness(proxy, body.upstreams)
        if body.enabled is not None:
            await proxy.set_enabled(body.enabled)
        if "tap" in body.model_fields_set:
            proxy.set_tap(body.tap)
        return proxy

    async def delete(self, name: str) -> None:
        proxy = self.get(name)
        del self.proxies[name]
        await proxy.stop()

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            proxy.reset_toxics()
            await proxy.set_enabled(True)

    async def close(self) -> None:
        for name in list(self.proxies):
            await self.delete(name)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (ProxyNotFound, ToxicNotFound) as exc:
        return _error(404, str(exc))
    except (ProxyConflict, ToxicConflict) as exc:
        return _error(409, str(exc))
    except SystemUnavailable as exc:
        return _error(500, str(exc))
    except HeisenError as exc:
        return _error(400, str(exc))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _error(400, f"bad request body: {problems}")


async def _json(request: web.Request) -> JsonObject:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UsageError("the request body must be a JSON object")
    return document


def make_app(registry: Registry) -> web.Application:
    """The control API over `registry`."""
    routes = web.RouteTableDef()

    @routes.get("/version")
    async def version(request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    @routes.get("/proxies")
    async def list_proxies(request: web.Request) -> web.Response:
        return web.json_response({n: p.to_json() for n, p in registry.proxies.items()})

    @routes.post("/proxies")
    async def create_proxy(request: web.Request) -> web.Response:
        proxy = await registry.create(CreateProxy.model_validate(await _json(request)))
        return web.json_response(proxy.to_json(), status=201)

    @routes.post("/reset")
    async def reset(request: web.Request) -> web.Response:
        await registry.reset()
        return web.Response(status=204)

    @routes.get("/proxies/{proxy}")
    async def show_proxy(request: web.Request) -> web.Response:
        return web.json_response(registry.get(request.match_info["proxy"]).to_json())

    @routes.post("/proxies/{proxy}")
    async def update_proxy(request: web.Request) -> web.Response:
        body = UpdateProxy.model_validate(await _json(request))
        proxy = await registry.update(request.match_info["proxy"], body)
        return web.json_response(proxy.to_json())

    @routes.delete("/proxies/{proxy}")
    async def delete_proxy(request: web.Request) -> web.Response:
        await registry.delete(request.match_info["proxy"])
        return web.Response(status=204)

    @routes.post("/proxies/{proxy}/upstreams/ready")
    async def set_ready(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        body = SetReady.model_validate(await _json(request))
        proxy.set_ready(Address.parse(body.upstream), body.ready)
        return web.json_response(proxy.to_json())

    @routes.get("/proxies/{proxy}/peers")
    async def peers(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        since = request.query.get("since", "0")
        if not since.isdigit():
            raise UsageError(f"since must be a number of connections, not {since!r}")
        total = proxy.stats_connections
        return web.json_response({"connections": total, "peers": proxy.peers(int(since))})

    @routes.get("/proxies/{proxy}/operations")
    async def operations(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        since = request.query.get("since", "0")
        if not since.isdigit():
            raise UsageError(f"since must be a number of operations, not {since!r}")
        total, decoded = proxy.operations(int(since))
        return web.json_response(
            {
                "total": total,
                "operations": [operation.to_json() for operation in decoded],
                "tap_lost": dict(proxy.tap_lost),
            }
        )

    @routes.get("/proxies/{proxy}/toxics")
    async def list_toxics(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        return web.json_response([spec.to_json() for spec in proxy.toxics.values()])

    @routes.post("/proxies/{proxy}/toxics")
    async def create_toxic(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        spec = proxy.add_toxic(parse_toxic(await _json(request)))
        return web.json_response(spec.to_json())

    @routes.get("/proxies/{proxy}/toxics/{toxic}")
    async def show_toxic(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        return web.json_response(proxy.toxic(request.match_info["toxic"]).to_json())

    @routes.post("/proxies/{proxy}/toxics/{toxic}")
    async def update_toxic(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        spec = proxy.update_toxic(request.match_info["toxic"], await _json(request))
        return web.json_response(spec.to_json())

    @routes.delete("/proxies/{proxy}/toxics/{toxic}")
    async def delete_toxic(request: web.Request) -> web.Response:
        proxy = registry.get(request.match_info["proxy"])
        proxy.remove_toxic(request.match_info["toxic"])
        return web.Response(status=204)

    app = web.Application(middlewares=[_errors])
    app.add_routes(routes)

    async def close_proxies(app: web.Application) -> None:
        await registry.close()

    app.on_cleanup.append(close_proxies)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m heisen.system._proxyd", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--api-host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, default=8474)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = make_app(Registry(args.seed))
    web.run_app(app, host=args.api_host, port=args.api_port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
